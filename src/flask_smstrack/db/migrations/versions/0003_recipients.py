"""Recipients of a campaign.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:20:36.320384
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smstrack_recipients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=True),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_recipients_campaign_id_smstrack_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_recipients')),
    sa.UniqueConstraint('campaign_id', 'phone', name=op.f('uq_smstrack_recipients_campaign_id_phone'))
    )
    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_recipients_campaign_id'), ['campaign_id'], unique=False)



def downgrade():
    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_recipients_campaign_id'))

    op.drop_table('smstrack_recipients')
