"""Session versions for built-in users, and why a click counts as a bot

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 22:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('smstrack_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('smstrack_clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot_reason', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('smstrack_clicks', schema=None) as batch_op:
        batch_op.drop_column('bot_reason')

    with op.batch_alter_table('smstrack_users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
