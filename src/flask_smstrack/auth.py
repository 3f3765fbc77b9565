"""Who is asking: API keys, built-in users, and which campaigns they see.

API keys are random and shown once; only their SHA-256 is stored. A request
is authenticated by ``Authorization: Bearer <key>`` or, when the app uses
Flask-Login, by the logged-in user's session.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from flask import request
from sqlalchemy import select

from .models import ApiKey, Campaign, User, utcnow
from .state import get_state

KEY_PREFIX = "smst_"


@dataclass(frozen=True)
class Principal:
    """The user a request acts for: its owner id and whether it is an admin."""

    owner_id: str
    is_admin: bool = False

    def can_see(self, campaign: Campaign) -> bool:
        return self.is_admin or campaign.owner_id == self.owner_id


def create_user(email: str, password: str, *, is_admin: bool = False) -> User:
    """Create a built-in user. Raises ``ValueError`` with a message to show."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValueError(f"{email!r} is not an email address.")
    if len(password) < 8:
        raise ValueError("The password must be at least 8 characters long.")
    db = get_state().db
    if db.session.execute(select(User.id).where(User.email == email)).first():
        raise ValueError(f"A user with the email {email} already exists.")
    user = User(email=email, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    db = get_state().db
    return db.session.execute(
        select(User).where(User.email == email.strip().lower())
    ).scalar_one_or_none()


def create_api_key(owner_id: str, *, is_admin: bool = False, name: str | None = None) -> tuple[str, ApiKey]:
    """Create an API key for ``owner_id``; returns the key (shown once) and its row."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        owner_id=owner_id,
        is_admin=is_admin,
        name=name,
        prefix=key[: len(KEY_PREFIX) + 6],
        key_hash=ApiKey.hash_key(key),
    )
    db = get_state().db
    db.session.add(row)
    db.session.commit()
    return key, row


def revoke_api_keys(prefix: str) -> int:
    """Revoke the keys that start with ``prefix`` (as ``list-api-keys`` shows
    them); returns how many."""
    db = get_state().db
    rows = db.session.execute(
        select(ApiKey).where(ApiKey.prefix == prefix[: len(KEY_PREFIX) + 6], ApiKey.revoked_at.is_(None))
    ).scalars().all()
    now = utcnow()
    for row in rows:
        row.revoked_at = now
    db.session.commit()
    return len(rows)


def principal_from_key(key: str) -> Principal | None:
    """The principal of an API key, or ``None`` for an unknown or revoked key."""
    db = get_state().db
    row = db.session.execute(
        select(ApiKey).where(ApiKey.key_hash == ApiKey.hash_key(key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=5):
        row.last_used_at = now
        db.session.commit()
    return Principal(row.owner_id, row.is_admin)


def principal_from_user(user: Any) -> Principal | None:
    """The principal of a Flask-Login user, or ``None`` when not allowed."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    state = get_state()
    check = state.ext.access_check_func if state.ext is not None else None
    if check is not None and not check(user):
        return None
    is_admin = bool(getattr(user, "smstrack_admin", False))
    return Principal(str(user.get_id()), is_admin)


def current_principal() -> tuple[Principal | None, bool]:
    """Who the current request acts for, by API key or logged-in session,
    and whether it came by session (browsers send that on their own)."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return principal_from_key(key.strip()), False
    from flask import current_app
    from flask_login import current_user

    if getattr(current_app, "login_manager", None) is None:
        return None, False
    return principal_from_user(current_user._get_current_object()), True
