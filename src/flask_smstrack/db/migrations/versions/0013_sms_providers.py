"""SMS providers: a campaign may name who sends it, and a message keeps the
price its provider (or an imported delivery report) gave

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider', sa.String(length=16), nullable=True))

    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost', sa.Numeric(precision=18, scale=4), nullable=True))


def downgrade():
    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.drop_column('cost')

    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.drop_column('provider')
