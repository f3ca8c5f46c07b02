"""The console at a million customers: search and per-customer indexes; the audit log names console users.

Customer search (bot/customers/search.py): on PostgreSQL a trigram index on the name (pg_trgm, when
the server offers it; without it the name search still works, scanning) and pattern indexes for
name (lower case) and external_userid prefixes. A customer's orders, campaign sends and SOP steps by external_userid. The
PK board's date ranges over bindings and the funnel's over events, read from the index alone. Audit entries of console users keep user id and username
instead of a negative token id.

Revision ID: 0011_console_api
Revises: 0011_jobs_dead
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0011_console_api"
down_revision = "0011_jobs_dead"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
ENDED = sa.text("ended_at IS NOT NULL")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _trigrams_available(bind) -> bool:
    if not bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first():
        log.warning("pg_trgm is not available on this PostgreSQL: customer name search will scan")
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:  # e.g. no privilege to create it
        log.warning("cannot create pg_trgm (%s): customer name search will scan", type(exc).__name__)
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        if _trigrams_available(bind):
            op.create_index("ix_customers_name_trgm", "customers", ["name"], postgresql_using="gin",
                            postgresql_ops={"name": "gin_trgm_ops"})
        op.create_index("ix_customers_external_userid_pattern", "customers", ["external_userid"],
                        postgresql_ops={"external_userid": "varchar_pattern_ops"})
        op.create_index("ix_customers_name_prefix", "customers", [sa.text("lower(name) varchar_pattern_ops")])
        # The funnel's date range read from the index alone (no visit to the wide event rows).
        op.create_index("ix_funnel_events_at_covering", "funnel_events", ["at"],
                        postgresql_include=["step", "qrcode_code", "channel_code", "store_code", "guide_userid"])
    op.create_index("ix_orders_customer", "orders", ["external_userid", "id"])
    op.create_index("ix_outreach_recipients_customer", "outreach_recipients", ["external_userid"])
    op.create_index("ix_sop_runs_customer", "sop_runs", ["external_userid", "due_at"])
    op.create_index("ix_customer_bindings_started", "customer_bindings", ["started_at"],
                    postgresql_include=["guide_userid", "store_code", "source"])
    op.create_index("ix_customer_bindings_ended", "customer_bindings", ["ended_at"],
                    postgresql_include=["guide_userid", "store_code", "end_reason"],
                    postgresql_where=ENDED, sqlite_where=ENDED)

    with op.batch_alter_table("api_audit") as batch:
        batch.add_column(sa.Column("user_id", BigId, nullable=True))
        batch.add_column(sa.Column("username", sa.String(length=64), nullable=True))
        batch.alter_column("token_id", existing_type=BigId, nullable=True)
    # Console users were recorded as token -<user id>.
    op.execute("UPDATE api_audit SET user_id = -token_id, token_id = NULL WHERE token_id < 0")
    op.execute("UPDATE api_audit SET username = (SELECT username FROM console_users WHERE console_users.id = "
               "api_audit.user_id) WHERE user_id IS NOT NULL")
    op.create_index("ix_api_audit_user", "api_audit", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_api_audit_user", "api_audit")
    op.execute("UPDATE api_audit SET token_id = -user_id WHERE token_id IS NULL")
    with op.batch_alter_table("api_audit") as batch:
        batch.alter_column("token_id", existing_type=BigId, nullable=False)
        batch.drop_column("username")
        batch.drop_column("user_id")
    for name, table in (("ix_customer_bindings_ended", "customer_bindings"),
                        ("ix_customer_bindings_started", "customer_bindings"), ("ix_sop_runs_customer", "sop_runs"),
                        ("ix_outreach_recipients_customer", "outreach_recipients"), ("ix_orders_customer", "orders")):
        op.drop_index(name, table)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_funnel_events_at_covering", "funnel_events")
        op.drop_index("ix_customers_external_userid_pattern", "customers")
        op.drop_index("ix_customers_name_prefix", "customers")
        op.execute("DROP INDEX IF EXISTS ix_customers_name_trgm")  # pg_trgm itself stays: others may use it
