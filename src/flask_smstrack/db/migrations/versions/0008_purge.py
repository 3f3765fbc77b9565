"""Purge: what is kept of purged clicks and conversions beyond the
rollups (recipients' first clicks, unattributed counts, order ids)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 03:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smstrack_rollup_recipients',
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('click_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('clicked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('device_type', sa.String(length=16), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('converted', sa.Boolean(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_rollup_recipients_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'recipient_id', name=op.f('pk_smstrack_rollup_recipients'))
    )
    op.create_table('smstrack_purged_conversions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('trust', sa.String(length=10), nullable=False),
    sa.Column('revenue', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('refunded', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_purged_conversions_campaign_id_smstrack_campaigns'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_purged_conversions')),
    sa.UniqueConstraint('owner_id', 'event', 'order_id', name=op.f('uq_smstrack_purged_conversions_owner_id_event_order_id'))
    )
    with op.batch_alter_table('smstrack_purged_conversions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_purged_conversions_campaign_id'), ['campaign_id'], unique=False)

    with op.batch_alter_table('smstrack_rollup_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unattributed', sa.BigInteger(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('smstrack_rollup_state', schema=None) as batch_op:
        batch_op.drop_column('unattributed')

    with op.batch_alter_table('smstrack_purged_conversions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_purged_conversions_campaign_id'))
    op.drop_table('smstrack_purged_conversions')
    op.drop_table('smstrack_rollup_recipients')
