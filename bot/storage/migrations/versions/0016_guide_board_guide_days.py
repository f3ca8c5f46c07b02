"""The PK board's settled days per (day, guide) over all stores, ranked from an index (bot/stores/board.py).

Revision ID: 0013_board_guide_days
Revises: 0012_board_tallies
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_board_guide_days"
down_revision = "0012_board_tallies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guide_board_guide_days",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("guide_userid", sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
                  nullable=False),
        sa.Column("add_store", sa.String(length=32), nullable=True),
        sa.Column("any_store", sa.String(length=32), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("lost", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "day", "guide_userid"),
    )
    op.create_index("ix_guide_board_guide_days_rank", "guide_board_guide_days",
                    ["zone", "day", sa.text("added DESC"), "lost", "guide_userid"])
    # Days tallied before this table existed: summed from their per-store rows.
    op.execute(
        "INSERT INTO guide_board_guide_days (zone, day, guide_userid, add_store, any_store, added, lost) "
        "SELECT zone, day, guide_userid, MAX(CASE WHEN added > 0 THEN store_code END), MAX(store_code), "
        "SUM(added), SUM(lost) FROM guide_board_tallies GROUP BY zone, day, guide_userid")


def downgrade() -> None:
    op.drop_index("ix_guide_board_guide_days_rank", "guide_board_guide_days")
    op.drop_table("guide_board_guide_days")
