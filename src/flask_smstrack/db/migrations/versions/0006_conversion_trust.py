"""Conversions you can trust: order ids unique per owner, refunds, verified
revenue apart in the rollups, and the campaign's "verified revenue only".

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 23:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _forget_rollups():
    """The next refresh rebuilds them from the rows."""
    for table in ('smstrack_rollup_conversions', 'smstrack_rollup_click_dims', 'smstrack_rollup_clicks',
                  'smstrack_rollup_state'):
        op.execute(f"DELETE FROM {table}")


def upgrade():
    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified_revenue_only', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('smstrack_conversions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.String(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('refunded', sa.Numeric(precision=18, scale=4), nullable=False, server_default='0'))
    # The owner of an attributed conversion is its campaign's; the others
    # were stored without one.
    op.execute(
        "UPDATE smstrack_conversions SET owner_id = COALESCE((SELECT c.owner_id FROM smstrack_campaigns c"
        " WHERE c.id = smstrack_conversions.campaign_id), '') WHERE campaign_id IS NOT NULL"
    )
    with op.batch_alter_table('smstrack_conversions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_smstrack_conversions_event_order_id', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_smstrack_conversions_owner_id_event_order_id'), ['owner_id', 'event', 'order_id']
        )

    op.create_table('smstrack_refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversion_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversion_id'], ['smstrack_conversions.id'], name=op.f('fk_smstrack_refunds_conversion_id_smstrack_conversions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_refunds')),
    sa.UniqueConstraint('conversion_id', 'external_id', name=op.f('uq_smstrack_refunds_conversion_id_external_id'))
    )
    with op.batch_alter_table('smstrack_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_refunds_conversion_id'), ['conversion_id'], unique=False)

    # The conversion rollups gain verified counts and refunds: they are
    # rebuilt from the rows by the next refresh.
    _forget_rollups()
    with op.batch_alter_table('smstrack_rollup_conversions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('verified_revenue', sa.Numeric(precision=18, scale=4), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('refunded', sa.Numeric(precision=18, scale=4), nullable=False, server_default='0'))


def downgrade():
    _forget_rollups()
    with op.batch_alter_table('smstrack_rollup_conversions', schema=None) as batch_op:
        batch_op.drop_column('refunded')
        batch_op.drop_column('verified_revenue')
        batch_op.drop_column('verified')

    with op.batch_alter_table('smstrack_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_refunds_conversion_id'))
    op.drop_table('smstrack_refunds')

    # Order ids were unique across owners: of the same order id and event
    # under several owners, the first stored is kept.
    op.execute(
        "DELETE FROM smstrack_conversions WHERE order_id IS NOT NULL AND id > (SELECT MIN(o.id)"
        " FROM smstrack_conversions o WHERE o.event = smstrack_conversions.event"
        " AND o.order_id = smstrack_conversions.order_id)"
    )
    with op.batch_alter_table('smstrack_conversions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_smstrack_conversions_owner_id_event_order_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_smstrack_conversions_event_order_id'), ['event', 'order_id'])
        batch_op.drop_column('refunded')
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.drop_column('verified_revenue_only')
