"""Outbound webhooks: owners' endpoints and GA4 streams, deliveries, and
the cursors of the event scan

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smstrack_webhook_cursors',
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_smstrack_webhook_cursors'))
    )
    op.create_table('smstrack_webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('measurement_id', sa.String(length=32), nullable=True),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('failed_deliveries', sa.Integer(), server_default='0', nullable=False),
    sa.Column('failed_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_webhook_endpoints'))
    )
    with op.batch_alter_table('smstrack_webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_webhook_endpoints_owner_id'), ['owner_id'], unique=False)

    op.create_table('smstrack_webhook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_type', sa.String(length=20), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['smstrack_webhook_endpoints.id'], name=op.f('fk_smstrack_webhook_deliveries_endpoint_id_smstrack_webhook_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_webhook_deliveries')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_smstrack_webhook_deliveries_endpoint_id_event_id'))
    )
    with op.batch_alter_table('smstrack_webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_smstrack_webhook_deliveries_due', ['status', 'next_attempt_at'], unique=False)



def downgrade():
    with op.batch_alter_table('smstrack_webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_smstrack_webhook_deliveries_due')

    op.drop_table('smstrack_webhook_deliveries')
    with op.batch_alter_table('smstrack_webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_webhook_endpoints_owner_id'))

    op.drop_table('smstrack_webhook_endpoints')
    op.drop_table('smstrack_webhook_cursors')
