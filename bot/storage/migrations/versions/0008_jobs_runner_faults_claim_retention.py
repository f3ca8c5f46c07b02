"""Jobs: a transient-fault counter, no index on status alone (it tempted the claim's planner into
sorting the backlog), and an index on finished_at for retention.

Revision ID: 0005_jobs_runner
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_jobs_runner"
down_revision = "0005pipeline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch (table copy) on SQLite would have to reflect the partial indexes.
    op.add_column("jobs", sa.Column("faults", sa.Integer(), nullable=False, server_default="0"))
    op.drop_index("ix_jobs_status", "jobs")
    finished = sa.text("finished_at IS NOT NULL")
    op.create_index("ix_jobs_finished", "jobs", ["finished_at"], sqlite_where=finished, postgresql_where=finished)


def downgrade() -> None:
    op.drop_index("ix_jobs_finished", "jobs")
    op.create_index("ix_jobs_status", "jobs", ["status"])
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("faults")
