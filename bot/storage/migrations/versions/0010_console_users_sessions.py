"""Console: people's accounts (argon2 hashes, lock-out counters) and their cookie sessions; funnel
events indexed by time alone for the dashboard's date ranges.

Revision ID: 0006_console
Revises: 0005_landing
"""

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision = "0006_console"
down_revision = "0009_campaigns"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = bot.storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("store_codes", sa.JSON(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC, nullable=True),
        sa.Column("disabled_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_sign_in_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("username", name=op.f("uq_console_users_username")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["console_users.id"], ondelete="CASCADE",
                                name=op.f("fk_console_sessions_user_id_console_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    op.create_index("ix_console_sessions_user", "console_sessions", ["user_id"])
    op.create_index("ix_funnel_events_at", "funnel_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_funnel_events_at", table_name="funnel_events")
    op.drop_index("ix_console_sessions_user", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
