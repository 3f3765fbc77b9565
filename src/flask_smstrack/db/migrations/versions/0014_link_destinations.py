"""Landing-page tests: a link's weighted destinations, and the destination
each click was sent to

On PostgreSQL the column is added to the partitioned parent
``smstrack_clicks``, which gives it to every partition.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'smstrack_link_destinations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.SmallInteger(), nullable=False),
        sa.Column('label', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('weight', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['link_id'], ['smstrack_links.id'],
                                name=op.f('fk_smstrack_link_destinations_link_id_smstrack_links'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_link_destinations')),
        sa.UniqueConstraint('link_id', 'number', name=op.f('uq_smstrack_link_destinations_link_id_number')),
    )
    # A plain ADD COLUMN (nullable, no default): no table rewrite on either
    # database, and on PostgreSQL the partitions take it from their parent.
    op.add_column('smstrack_clicks', sa.Column('destination_no', sa.SmallInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('smstrack_clicks', schema=None) as batch_op:
        batch_op.drop_column('destination_no')
    op.drop_table('smstrack_link_destinations')
