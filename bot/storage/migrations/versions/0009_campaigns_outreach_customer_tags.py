"""Campaigns and outreach (plans, sends, recipients, the cap ledger) and the customer-tag mirror.

Revision ID: 0009_campaigns
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import bot.storage.types

revision = '0009_campaigns'
down_revision = '0005_jobs_runner'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('audience', sa.JSON(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('coupon_template_code', sa.String(length=32), nullable=True),
    sa.Column('send_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attribution_days', sa.Integer(), nullable=False),
    sa.Column('holdout_percent', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('store_codes', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('approved_by', sa.String(length=80), nullable=True),
    sa.Column('reminders', sa.JSON(), nullable=False),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('launched_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_table('customer_tags',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('guide_userid', sa.String(length=64), nullable=False),
    sa.Column('tag_id', sa.String(length=64), nullable=False),
    sa.Column('tag_name', sa.String(length=60), nullable=False),
    sa.Column('synced_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_tags'))
    )
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.create_index('ix_customer_tags_customer', ['external_userid', 'guide_userid'], unique=False)
        batch_op.create_index('ix_customer_tags_name_customer', ['tag_name', 'external_userid'], unique=False)
        batch_op.create_index('ix_customer_tags_tag', ['tag_id'], unique=False)

    op.create_table('outreach_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_ledger'))
    )
    with op.batch_alter_table('outreach_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_ledger_at', ['at'], unique=False)
        batch_op.create_index('ix_outreach_ledger_customer_at', ['external_userid', 'at'], unique=False)

    op.create_table('outreach_plans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('coupon_template_code', sa.String(length=32), nullable=True),
    sa.Column('holdout_percent', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('planned_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_change_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('synced_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sync_runs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_plans')),
    sa.UniqueConstraint('source', name=op.f('uq_outreach_plans_source'))
    )
    op.create_table('outreach_recipients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_userid', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('guide_userid', sa.String(length=64), nullable=True),
    sa.Column('store_code', sa.String(length=32), nullable=True),
    sa.Column('chunk', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=60), nullable=True),
    sa.Column('coupon_code', sa.String(length=24), nullable=True),
    sa.Column('sent_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_recipients')),
    sa.UniqueConstraint('source', 'external_userid', name='uq_outreach_recipients_customer')
    )
    with op.batch_alter_table('outreach_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_recipients_send', ['source', 'guide_userid', 'chunk'], unique=False)
        batch_op.create_index('ix_outreach_recipients_status', ['source', 'status', 'id'], unique=False)

    op.create_table('outreach_sends',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('guide_userid', sa.String(length=64), nullable=False),
    sa.Column('chunk', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('msgid', sa.String(length=64), nullable=True),
    sa.Column('creating_since', sa.Float(), nullable=True),
    sa.Column('task_status', sa.Integer(), nullable=False),
    sa.Column('confirmed_at', bot.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', bot.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_sends')),
    sa.UniqueConstraint('source', 'guide_userid', 'chunk', name='uq_outreach_sends_key')
    )
    with op.batch_alter_table('outreach_sends', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_sends_source_status', ['source', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outreach_sends', schema=None) as batch_op:
        batch_op.drop_index('ix_outreach_sends_source_status')

    op.drop_table('outreach_sends')
    with op.batch_alter_table('outreach_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_outreach_recipients_status')
        batch_op.drop_index('ix_outreach_recipients_send')

    op.drop_table('outreach_recipients')
    op.drop_table('outreach_plans')
    with op.batch_alter_table('outreach_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_outreach_ledger_customer_at')
        batch_op.drop_index('ix_outreach_ledger_at')

    op.drop_table('outreach_ledger')
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_tags_tag')
        batch_op.drop_index('ix_customer_tags_name_customer')
        batch_op.drop_index('ix_customer_tags_customer')

    op.drop_table('customer_tags')
    op.drop_table('campaigns')
