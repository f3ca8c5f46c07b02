"""SOP templates remember the clock of their last enrolment scan: after downtime longer than the
scan's look-back, the next scan starts there and no trigger is missed.

Revision ID: 0011_sop_scanned_until
Revises: 0010_sop_engine
"""

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision = '0011_sop_scanned_until'
down_revision = '0010_sop_engine'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sop_templates') as batch:
        batch.add_column(sa.Column('scanned_until', bot.storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sop_templates') as batch:
        batch.drop_column('scanned_until')
