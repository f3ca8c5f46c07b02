"""customer_bindings.qrcode_code: which aggregated code brought the customer (funnel per code)

Revision ID: 0003a
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003a"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_bindings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("qrcode_code", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_bindings", schema=None) as batch_op:
        batch_op.drop_column("qrcode_code")
