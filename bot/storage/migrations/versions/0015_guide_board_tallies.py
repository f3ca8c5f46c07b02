"""The PK board's settled days: adds and losses per (day, guide, store), tallied once (bot/stores/board.py).

Revision ID: 0012_board_tallies
Revises: 0011_console_api
"""

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision = "0012_board_tallies"
down_revision = "0011_console_api"
branch_labels = None
depends_on = None

UTC = bot.storage.types.UTCDateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "guide_board_days",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tallied_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("zone", "day"),
    )
    op.create_table(
        "guide_board_tallies",
        sa.Column("id", BigId, nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("guide_userid", sa.String(length=64), nullable=False),
        sa.Column("store_code", sa.String(length=32), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("lost", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_guide_board_tallies_day", "guide_board_tallies", ["zone", "day"])


def downgrade() -> None:
    op.drop_index("ix_guide_board_tallies_day", "guide_board_tallies")
    op.drop_table("guide_board_tallies")
    op.drop_table("guide_board_days")
