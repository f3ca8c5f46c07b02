"""The PK board's settled days and complete weeks per guide over all stores, ranked from an index (bot/stores/board.py).

Revision ID: 0013_board_guide_days
Revises: 0012_board_tallies
"""

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0013_board_guide_days"
down_revision = "0012_board_tallies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("guide_board_guide_days", "guide_board_guide_weeks"):
        create(table)
    # Days tallied before these tables existed: summed from their per-store rows, and their
    # complete weeks from those days.
    op.execute(
        "INSERT INTO guide_board_guide_days (zone, day, guide_userid, add_store, any_store, added, lost) "
        "SELECT zone, day, guide_userid, MAX(CASE WHEN added > 0 THEN store_code END), MAX(store_code), "
        "SUM(added), SUM(lost) FROM guide_board_tallies GROUP BY zone, day, guide_userid")
    bind = op.get_bind()
    tallied = defaultdict(set)
    for zone, day in bind.execute(sa.text("SELECT zone, day FROM guide_board_days")):
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        tallied[(zone, day - dt.timedelta(days=day.weekday()))].add(day)
    for (zone, monday), days in sorted(tallied.items()):
        if len(days) == 7:
            bind.execute(sa.text(
                "INSERT INTO guide_board_guide_weeks (zone, day, guide_userid, add_store, any_store, added, lost) "
                "SELECT zone, :monday, guide_userid, MAX(add_store), MAX(any_store), SUM(added), SUM(lost) "
                "FROM guide_board_guide_days WHERE zone = :zone AND day >= :monday AND day <= :sunday "
                "GROUP BY zone, guide_userid").bindparams(
                    sa.bindparam("monday", monday, sa.Date()), sa.bindparam("sunday", monday + dt.timedelta(days=6), sa.Date()),
                    zone=zone))


def create(table: str) -> None:
    op.create_table(
        table,
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
    op.create_index(f"ix_{table}_rank", table, ["zone", "day", sa.text("added DESC"), "lost", "guide_userid"])


def downgrade() -> None:
    for table in ("guide_board_guide_weeks", "guide_board_guide_days"):
        op.drop_index(f"ix_{table}_rank", table)
        op.drop_table(table)
