"""On PostgreSQL, clicks keep their link and campaign ids without foreign
keys: a foreign key check locks the link's and the campaign's row (FOR KEY
SHARE) on every click, so concurrent clicks of one campaign all wrote to
that one row. Deleting a link or a campaign still deletes its clicks: a
trigger per statement does what ON DELETE CASCADE did

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 09:30:00
"""
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_KEYS = (
    ("fk_smstrack_clicks_link_id_smstrack_links", "link_id", "smstrack_links"),
    ("fk_smstrack_clicks_campaign_id_smstrack_campaigns", "campaign_id", "smstrack_campaigns"),
)


def upgrade():
    # SQLite does not check foreign keys unless asked (smstrack never asks):
    # nothing to change there.
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _, _ in _KEYS:
        op.execute(f"ALTER TABLE smstrack_clicks DROP CONSTRAINT IF EXISTS {name}")
    for _, column, target in _KEYS:
        op.execute(
            f"CREATE OR REPLACE FUNCTION {target}_drop_clicks() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN DELETE FROM smstrack_clicks c USING gone WHERE c.{column} = gone.id; RETURN NULL; END $$"
        )
        op.execute(f"CREATE TRIGGER {target}_drop_clicks AFTER DELETE ON {target} REFERENCING OLD TABLE AS gone"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION {target}_drop_clicks()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for _, _, target in _KEYS:
        op.execute(f"DROP TRIGGER IF EXISTS {target}_drop_clicks ON {target}")
        op.execute(f"DROP FUNCTION IF EXISTS {target}_drop_clicks()")
    for name, column, target in _KEYS:
        op.execute(f"ALTER TABLE smstrack_clicks ADD CONSTRAINT {name} FOREIGN KEY ({column})"
                   f" REFERENCES {target} (id) ON DELETE CASCADE")
