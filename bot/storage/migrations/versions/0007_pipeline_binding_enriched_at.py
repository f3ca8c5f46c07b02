"""Bindings remember when their customer's profile and channel tags were fetched (batched enrichment).

Revision ID: 0005pipeline
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005pipeline"
down_revision = "0005_api_audit"
branch_labels = None
depends_on = None

PENDING = sa.text("enriched_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("customer_bindings") as batch:
        batch.add_column(sa.Column("enriched_at", sa.DateTime(timezone=True), nullable=True))
    # Bindings made before this release were enriched by their own job (still queued ones run it).
    op.execute("UPDATE customer_bindings SET enriched_at = started_at")
    op.create_index("ix_customer_bindings_enrich_pending", "customer_bindings", ["id"],
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_customer_bindings_enrich_pending", "customer_bindings")
    with op.batch_alter_table("customer_bindings") as batch:
        batch.drop_column("enriched_at")
