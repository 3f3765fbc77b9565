"""Recipients' first clicks indexed apart: the redirect finds a recipient's
first human click in one index probe, however often the link was clicked

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_WHERE = "recipient_id IS NOT NULL AND kind = 'human' AND is_first"


def upgrade():
    # On PostgreSQL's partitioned clicks the index is made on every partition.
    op.create_index('ix_smstrack_clicks_recipient_first', 'smstrack_clicks', ['recipient_id', 'id'], unique=False,
                    sqlite_where=sa.text(_WHERE), postgresql_where=sa.text(_WHERE))


def downgrade():
    op.drop_index('ix_smstrack_clicks_recipient_first', table_name='smstrack_clicks')
