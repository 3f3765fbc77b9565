"""Data for the end-to-end tests' servers, put in from the test process: the
standalone app built from the same environment as the server, and the
functions the ``flask smstrack`` commands call, without starting a process
for each command. ``tests/test_sms_e2e.py`` and ``tests/test_wheel.py``,
which are about the CLI, run the real one.
"""
from __future__ import annotations

import json
from typing import Any

#: Settings of the standalone app that are not ``app.config`` keys.
_NOT_CONFIG = ("SMSTRACK_PROXY_HOPS", "SMSTRACK_INSTANCE_PATH")


def _env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class Seed:
    """The server's app in this process: ``env`` is what the server was
    started with (``DATABASE_URL``, ``SECRET_KEY``, ``SMSTRACK_*``)."""

    def __init__(self, env: dict[str, str]) -> None:
        from wsgi import create_app

        config = {k: _env_value(v) for k, v in env.items() if k.startswith("SMSTRACK_") and k not in _NOT_CONFIG}
        config.update(SQLALCHEMY_DATABASE_URI=env["DATABASE_URL"], SECRET_KEY=env["SECRET_KEY"], TESTING=True)
        self.app = create_app(config)

    def __enter__(self) -> Seed:
        return self

    def __exit__(self, *exc: object) -> None:
        from wsgi import db

        with self.app.app_context():
            db.engine.dispose()

    def user(self, email: str, password: str, *, admin: bool = False) -> str:
        """Create a user (``create-user``); return its id."""
        from flask_smstrack.auth import create_user

        with self.app.app_context():
            return str(create_user(email, password, is_admin=admin).id)

    def user_with_key(self, email: str) -> str:
        """Create an admin user and return a new API key for it."""
        from flask_smstrack.auth import create_api_key

        owner_id = self.user(email, "correct horse battery", admin=True)
        with self.app.app_context():
            key, _ = create_api_key(owner_id, is_admin=True)
        return key

    def campaign(self, owner: str, **fields: Any) -> int:
        """Create a campaign (``create-campaign``) owned by the user ``owner``."""
        from flask_smstrack.auth import find_user
        from flask_smstrack.manage import create_campaign
        from flask_smstrack.schemas import CampaignSchema

        with self.app.app_context():
            owner_id = str(find_user(owner).id)
            return create_campaign(CampaignSchema().load(fields), owner_id).id

    def link(self, campaign_id: int, destination: str, code: str | None = None) -> str:
        """Add a link (``create-link``); return its short URL."""
        from flask_smstrack.manage import create_link, get_campaign, short_url
        from flask_smstrack.schemas import LinkSchema

        raw = {"destination_url": destination, **({"code": code} if code else {})}
        with self.app.app_context():
            return short_url(create_link(get_campaign(campaign_id), LinkSchema().load(raw)))

    def campaign_with_link(self, owner: str, destination: str, code: str) -> tuple[int, str]:
        """Create a campaign with one link; return the campaign id and short URL."""
        campaign_id = self.campaign(owner, name=f"Campaign {code}", currency="USD", cost="10", sent=100)
        return campaign_id, self.link(campaign_id, destination, code)

    def variant(self, campaign_id: int, name: str, message: str) -> None:
        """Add a message variant (``add-variant``)."""
        from flask_smstrack.manage import add_variant, get_campaign
        from flask_smstrack.schemas import VariantSchema

        with self.app.app_context():
            add_variant(get_campaign(campaign_id), VariantSchema().load({"name": name, "message_template": message}))

    def recipients(self, campaign_id: int, csv_text: str) -> int:
        """Import recipients from CSV text (``import-recipients``); return how many."""
        from flask_smstrack.sms.recipients import import_recipients, read_csv

        with self.app.app_context():
            return import_recipients(campaign_id, read_csv(csv_text)).imported

    def export_messages(self, campaign_id: int) -> list[dict[str, str]]:
        """Render the messages and count them as sent (``export-messages``);
        return them as the CSV's rows: phone, message, variant."""
        from flask_smstrack.manage import get_campaign
        from flask_smstrack.sms.messages import prepare_messages
        from flask_smstrack.sms.outbox import mark_exported, message_rows

        with self.app.app_context():
            campaign = get_campaign(campaign_id)
            prepare_messages(campaign)
            rows = message_rows(campaign)
            mark_exported(campaign_id)
        return [{"phone": phone, "message": message, "variant": variant} for phone, message, variant in rows]

    def demo(self, owner: str, *, clicks: int, seed: int) -> int:
        """The Spring sale demo campaign (``demo --no-sms``); return its id."""
        from flask_smstrack.auth import find_user
        from flask_smstrack.demo.spring_sale import create_demo_campaign

        with self.app.app_context():
            return create_demo_campaign(clicks=clicks, owner_id=str(find_user(owner).id), seed=seed).id
