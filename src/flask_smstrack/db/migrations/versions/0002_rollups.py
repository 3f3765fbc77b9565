"""Rollups: pre-aggregated click and conversion counts per campaign.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:35:09.021200
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smstrack_rollup_click_dims',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('dimension', sa.String(length=20), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('clicks', sa.BigInteger(), nullable=False),
    sa.Column('firsts', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_rollup_click_dims_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'dimension', 'value', 'kind', name=op.f('pk_smstrack_rollup_click_dims'))
    )
    op.create_table('smstrack_rollup_clicks',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('clicks', sa.BigInteger(), nullable=False),
    sa.Column('firsts', sa.BigInteger(), nullable=False),
    sa.Column('confirmed', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_rollup_clicks_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'bucket', 'kind', name=op.f('pk_smstrack_rollup_clicks'))
    )
    op.create_table('smstrack_rollup_conversions',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('dimension', sa.String(length=20), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('conversions', sa.BigInteger(), nullable=False),
    sa.Column('revenue', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_rollup_conversions_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'dimension', 'value', 'currency', name=op.f('pk_smstrack_rollup_conversions'))
    )
    op.create_table('smstrack_rollup_state',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('rolled_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_rollup_state_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_smstrack_rollup_state'))
    )


def downgrade():
    op.drop_table('smstrack_rollup_state')
    op.drop_table('smstrack_rollup_conversions')
    op.drop_table('smstrack_rollup_clicks')
    op.drop_table('smstrack_rollup_click_dims')
