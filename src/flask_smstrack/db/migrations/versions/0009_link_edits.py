"""Links you can change: a link may be disabled or expire, and a campaign
may name where its ended links send visitors

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('smstrack_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fallback_url', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.drop_column('fallback_url')

    with op.batch_alter_table('smstrack_links', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('disabled')
