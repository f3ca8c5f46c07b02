"""Dead letters get a partial index: /metrics counts them without reading the whole jobs table.

Revision ID: 0011_jobs_dead
Revises: 0011_sop_scanned_until
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_jobs_dead"
down_revision = "0011_sop_scanned_until"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dead = sa.text("status = 'dead'")
    op.create_index("ix_jobs_dead", "jobs", ["finished_at"], sqlite_where=dead, postgresql_where=dead)


def downgrade() -> None:
    op.drop_index("ix_jobs_dead", "jobs")
