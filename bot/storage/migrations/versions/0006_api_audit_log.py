"""The admin API's audit log of writes; QR codes saved with a null fallback get the empty one.

Revision ID: 0005_api_audit
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision = "0005_api_audit"
down_revision = "0005_landing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", bot.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("operation", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_audit")),
    )
    op.create_index("ix_api_audit_token", "api_audit", ["token_id", "id"])
    # PATCH {"fallback": null} used to be saved (then every reader of the code failed): repair such rows.
    op.execute("UPDATE qrcodes SET fallback = '{}' WHERE fallback IS NULL OR CAST(fallback AS TEXT) = 'null'")


def downgrade() -> None:
    op.drop_index("ix_api_audit_token", "api_audit")
    op.drop_table("api_audit")
