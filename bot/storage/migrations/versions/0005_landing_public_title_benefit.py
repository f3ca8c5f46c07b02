"""Landing page: a code's public title and a channel's new-member benefit text.

Revision ID: 0005_landing
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_landing"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qrcodes") as batch:
        batch.add_column(sa.Column("public_title", sa.String(length=60), nullable=True))
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("benefit_text", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("benefit_text")
    with op.batch_alter_table("qrcodes") as batch:
        batch.drop_column("public_title")
