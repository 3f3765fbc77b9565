"""Campaigns in every channel: a campaign's channel (sms, email, social,
qr, print or other); existing campaigns are SMS campaigns

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), server_default='sms', nullable=False))


def downgrade():
    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.drop_column('channel')
