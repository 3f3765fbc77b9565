"""Initial schema: campaigns, links, clicks, conversions, users, API keys.

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 07:30:29.832539
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smstrack_api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_smstrack_api_keys_key_hash'))
    )
    with op.batch_alter_table('smstrack_api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_api_keys_owner_id'), ['owner_id'], unique=False)

    op.create_table('smstrack_campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cost', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('cost_per_message', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('sent', sa.Integer(), nullable=True),
    sa.Column('delivered', sa.Integer(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_template', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_campaigns'))
    )
    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_campaigns_owner_id'), ['owner_id'], unique=False)

    op.create_table('smstrack_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_users')),
    sa.UniqueConstraint('email', name=op.f('uq_smstrack_users_email'))
    )
    op.create_table('smstrack_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('destination_url', sa.Text(), nullable=False),
    sa.Column('append_click_id', sa.Boolean(), nullable=False),
    sa.Column('utm', sa.JSON(), nullable=True),
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_links_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_links')),
    sa.UniqueConstraint('code', name=op.f('uq_smstrack_links_code'))
    )
    with op.batch_alter_table('smstrack_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_links_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_smstrack_links_recipient_id'), ['recipient_id'], unique=False)

    op.create_table('smstrack_clicks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('click_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('is_first', sa.Boolean(), nullable=False),
    sa.Column('human_confirmed', sa.Boolean(), nullable=False),
    sa.Column('visitor_id', sa.String(length=32), nullable=True),
    sa.Column('device_type', sa.String(length=16), nullable=True),
    sa.Column('os', sa.String(length=64), nullable=True),
    sa.Column('browser', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('referrer_host', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_clicks_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['smstrack_links.id'], name=op.f('fk_smstrack_clicks_link_id_smstrack_links'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_clicks')),
    sa.UniqueConstraint('click_id', name=op.f('uq_smstrack_clicks_click_id'))
    )
    with op.batch_alter_table('smstrack_clicks', schema=None) as batch_op:
        batch_op.create_index('ix_smstrack_clicks_campaign_time', ['campaign_id', 'created_at'], unique=False)
        batch_op.create_index('ix_smstrack_clicks_visitor_link', ['visitor_id', 'link_id'], unique=False, sqlite_where=sa.text('visitor_id IS NOT NULL'), postgresql_where=sa.text('visitor_id IS NOT NULL'))

    op.create_table('smstrack_conversions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('click_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reported_click_id', sa.String(length=64), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('revenue', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('order_id', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('trust', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_conversions_campaign_id_smstrack_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['click_pk'], ['smstrack_clicks.id'], name=op.f('fk_smstrack_conversions_click_pk_smstrack_clicks'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_conversions')),
    sa.UniqueConstraint('event', 'order_id', name=op.f('uq_smstrack_conversions_event_order_id'))
    )
    with op.batch_alter_table('smstrack_conversions', schema=None) as batch_op:
        batch_op.create_index('ix_smstrack_conversions_campaign_time', ['campaign_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_smstrack_conversions_click_pk'), ['click_pk'], unique=False)



def downgrade():
    with op.batch_alter_table('smstrack_conversions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_conversions_click_pk'))
        batch_op.drop_index('ix_smstrack_conversions_campaign_time')

    op.drop_table('smstrack_conversions')
    with op.batch_alter_table('smstrack_clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_smstrack_clicks_visitor_link')
        batch_op.drop_index('ix_smstrack_clicks_campaign_time')

    op.drop_table('smstrack_clicks')
    with op.batch_alter_table('smstrack_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_links_recipient_id'))
        batch_op.drop_index(batch_op.f('ix_smstrack_links_campaign_id'))

    op.drop_table('smstrack_links')
    op.drop_table('smstrack_users')
    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_campaigns_owner_id'))

    op.drop_table('smstrack_campaigns')
    with op.batch_alter_table('smstrack_api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_api_keys_owner_id'))

    op.drop_table('smstrack_api_keys')
