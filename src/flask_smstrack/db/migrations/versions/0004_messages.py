"""Variants, per-recipient links, message sending and delivery

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:11:25.780415
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smstrack_variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('message_template', sa.Text(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_variants_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_variants')),
    sa.UniqueConstraint('campaign_id', 'name', name=op.f('uq_smstrack_variants_campaign_id_name'))
    )
    with op.batch_alter_table('smstrack_variants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_variants_campaign_id'), ['campaign_id'], unique=False)

    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost_per_segment', sa.Numeric(precision=18, scale=4), nullable=True))

    with op.batch_alter_table('smstrack_clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=8), nullable=True))
        batch_op.create_index('ix_smstrack_clicks_recipient', ['recipient_id'], unique=False, sqlite_where=sa.text('recipient_id IS NOT NULL'), postgresql_where=sa.text('recipient_id IS NOT NULL'))

    with op.batch_alter_table('smstrack_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_smstrack_links_parent_id_recipient_id'), ['parent_id', 'recipient_id'])
        batch_op.create_foreign_key(batch_op.f('fk_smstrack_links_parent_id_smstrack_links'), 'smstrack_links', ['parent_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('message_sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('error_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('status_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_smstrack_recipients_campaign_status', ['campaign_id', 'status'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_smstrack_recipients_message_sid'), ['message_sid'])



def downgrade():
    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_smstrack_recipients_message_sid'), type_='unique')
        batch_op.drop_index('ix_smstrack_recipients_campaign_status')
        batch_op.drop_column('status_at')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('error_code')
        batch_op.drop_column('message_sid')
        batch_op.drop_column('message')

    with op.batch_alter_table('smstrack_links', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_smstrack_links_parent_id_smstrack_links'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_smstrack_links_parent_id_recipient_id'), type_='unique')
        batch_op.drop_column('parent_id')

    with op.batch_alter_table('smstrack_clicks', schema=None) as batch_op:
        batch_op.drop_index('ix_smstrack_clicks_recipient', sqlite_where=sa.text('recipient_id IS NOT NULL'), postgresql_where=sa.text('recipient_id IS NOT NULL'))
        batch_op.drop_column('source')

    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.drop_column('cost_per_segment')

    with op.batch_alter_table('smstrack_variants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_variants_campaign_id'))

    op.drop_table('smstrack_variants')
