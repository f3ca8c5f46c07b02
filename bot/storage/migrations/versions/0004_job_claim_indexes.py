"""Job claims read only queued jobs: partial indexes; joins the 0003a and 0003b branches.

Revision ID: 0004
Revises: 0003a, 0003b
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = ("0003a", "0003b")
branch_labels = None
depends_on = None


def upgrade() -> None:
    queued = sa.text("status = 'queued'")
    running = sa.text("status = 'running'")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_claim")
    op.create_index("ix_jobs_queued", "jobs", [sa.text("priority DESC"), "run_at"],
                    sqlite_where=queued, postgresql_where=queued)
    op.create_index("ix_jobs_running_lease", "jobs", ["lease_until"],
                    sqlite_where=running, postgresql_where=running)
    op.create_index("ix_jobs_status", "jobs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status", "jobs")
    op.drop_index("ix_jobs_running_lease", "jobs")
    op.drop_index("ix_jobs_queued", "jobs")
    op.create_index("ix_jobs_claim", "jobs", ["status", "priority", "run_at"])
