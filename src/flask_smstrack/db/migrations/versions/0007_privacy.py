"""Privacy and compliance: suppressions and opt-out history, recipients'
time zone, consent and forgotten numbers, purge and forget marks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 02:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smstrack_suppressions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('phone_tail', sa.String(length=2), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('keyword', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_suppressions')),
    sa.UniqueConstraint('owner_id', 'phone_hash', name=op.f('uq_smstrack_suppressions_owner_id_phone_hash'))
    )
    with op.batch_alter_table('smstrack_suppressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_suppressions_phone_hash'), ['phone_hash'], unique=False)

    op.create_table('smstrack_opt_out_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('phone_tail', sa.String(length=2), nullable=True),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('keyword', sa.String(length=32), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('recipient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('external_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['smstrack_campaigns.id'], name=op.f('fk_smstrack_opt_out_events_campaign_id_smstrack_campaigns'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smstrack_opt_out_events')),
    sa.UniqueConstraint('owner_id', 'external_id', name=op.f('uq_smstrack_opt_out_events_owner_id_external_id'))
    )
    with op.batch_alter_table('smstrack_opt_out_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_smstrack_opt_out_events_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('ix_smstrack_opt_out_events_owner_phone', ['owner_id', 'phone_hash'], unique=False)

    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=16), nullable=True)
        batch_op.add_column(sa.Column('phone_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone_tail', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('consent_source', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_smstrack_recipients_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index('ix_smstrack_recipients_phone', ['phone'], unique=False)

    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phones_forgotten_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('smstrack_rollup_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('smstrack_rollup_state', schema=None) as batch_op:
        batch_op.drop_column('purged_until')

    with op.batch_alter_table('smstrack_campaigns', schema=None) as batch_op:
        batch_op.drop_column('phones_forgotten_at')

    with op.batch_alter_table('smstrack_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_smstrack_recipients_phone')
        batch_op.drop_index(batch_op.f('ix_smstrack_recipients_phone_hash'))
        batch_op.drop_column('consent_at')
        batch_op.drop_column('consent_source')
        batch_op.drop_column('timezone')
        batch_op.drop_column('phone_tail')
        batch_op.drop_column('phone_hash')
        batch_op.alter_column('phone', existing_type=sa.String(length=16), nullable=False)

    with op.batch_alter_table('smstrack_opt_out_events', schema=None) as batch_op:
        batch_op.drop_index('ix_smstrack_opt_out_events_owner_phone')
        batch_op.drop_index(batch_op.f('ix_smstrack_opt_out_events_campaign_id'))
    op.drop_table('smstrack_opt_out_events')

    with op.batch_alter_table('smstrack_suppressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_smstrack_suppressions_phone_hash'))
    op.drop_table('smstrack_suppressions')
