"""SOP engine: templates, versions, enrolments, runs per step, guide items.

Revision ID: 0010_sop_engine
Revises: 0009_campaigns
"""

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision = '0010_sop_engine'
down_revision = '0006_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sop_enrolments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('trigger_key', sa.String(length=80), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('anchor_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('exit_reason', sa.String(length=30), nullable=True),
    sa.Column('exited_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sop_enrolments')),
    sa.UniqueConstraint('code', 'external_userid', 'trigger_key', name='uq_sop_enrolments_occurrence')
    )
    op.create_table('sop_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('step_key', sa.String(length=32), nullable=False),
    sa.Column('slot', sa.String(length=16), nullable=False),
    sa.Column('guide_userid', sa.String(length=64), nullable=False),
    sa.Column('store_code', sa.String(length=32), nullable=True),
    sa.Column('reach', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('due_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acted_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sop_items')),
    sa.UniqueConstraint('code', 'version', 'step_key', 'slot', 'guide_userid', name='uq_sop_items_slot')
    )
    with op.batch_alter_table('sop_items', schema=None) as batch_op:
        batch_op.create_index('ix_sop_items_guide', ['guide_userid', 'status'], unique=False)

    op.create_table('sop_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrolment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('step_key', sa.String(length=32), nullable=False),
    sa.Column('due_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=60), nullable=True),
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('guide_userid', sa.String(length=64), nullable=True),
    sa.Column('store_code', sa.String(length=32), nullable=True),
    sa.Column('updated_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sop_runs')),
    sa.UniqueConstraint('enrolment_id', 'step_key', name='uq_sop_runs_step')
    )
    with op.batch_alter_table('sop_runs', schema=None) as batch_op:
        batch_op.create_index('ix_sop_runs_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_sop_runs_item', ['item_id'], unique=False)

    op.create_table('sop_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sop_templates')),
    sa.UniqueConstraint('code', name=op.f('uq_sop_templates_code'))
    )
    op.create_table('sop_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sop_versions')),
    sa.UniqueConstraint('code', 'version', name='uq_sop_versions_code_version')
    )


def downgrade() -> None:
    op.drop_table('sop_versions')
    op.drop_table('sop_templates')
    with op.batch_alter_table('sop_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_sop_runs_item')
        batch_op.drop_index('ix_sop_runs_due')

    op.drop_table('sop_runs')
    with op.batch_alter_table('sop_items', schema=None) as batch_op:
        batch_op.drop_index('ix_sop_items_guide')

    op.drop_table('sop_items')
    op.drop_table('sop_enrolments')
