"""Coalesced dispatch: the inbox keeps the key of events one dispatch handles together (a 微信客服
account), indexed over the rows still to do.

Revision ID: 0014_inbox_dispatch_key
Revises: 0013_board_guide_days
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_inbox_dispatch_key"
down_revision = "0013_board_guide_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_events") as batch:
        batch.add_column(sa.Column("dispatch_key", sa.String(120), nullable=True))
    to_do = sa.text("status IN ('pending', 'failed')")
    op.create_index("ix_inbox_events_dispatch_key", "inbox_events", ["dispatch_key"],
                    sqlite_where=to_do, postgresql_where=to_do)


def downgrade() -> None:
    op.drop_index("ix_inbox_events_dispatch_key", "inbox_events")
    with op.batch_alter_table("inbox_events") as batch:
        batch.drop_column("dispatch_key")
