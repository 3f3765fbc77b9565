"""Who is asking: API keys, built-in users, and which campaigns they see.

API keys are random and shown once; only their SHA-256 is stored. A request
is authenticated by ``Authorization: Bearer <key>`` or, when the app uses
Flask-Login, by the logged-in user's session.
"""
from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app, request
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug import security

from .config import Keys
from .models import SESSION_ID_PREFIX, ApiKey, Campaign, User, utcnow
from .state import get_state

KEY_PREFIX = "smst_"


@dataclass(frozen=True)
class Principal:
    """The user a request acts for: its owner id and whether it is an admin."""

    owner_id: str
    is_admin: bool = False

    def can_see(self, campaign: Campaign) -> bool:
        return self.is_admin or campaign.owner_id == self.owner_id


def _check_new_password(password: str) -> None:
    if len(password) < 8:
        raise ValueError("The password must be at least 8 characters long.")


def create_user(email: str, password: str, *, is_admin: bool = False) -> User:
    """Create a built-in user. Raises ``ValueError`` with a message to show."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValueError(f"{email!r} is not an email address.")
    _check_new_password(password)
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


#: A hash of a random password per hashing method, checked against when a
#: login names an unknown email.
_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    method = current_app.config[Keys.PASSWORD_HASH_METHOD]
    value = _DUMMY_HASHES.get(method)
    if value is None:
        value = _DUMMY_HASHES[method] = security.generate_password_hash(secrets.token_urlsafe(16), method=method)
    return value


def authenticate(email: str, password: str) -> User | None:
    """The built-in user with this email and password, or ``None``.

    An unknown email costs one password hash check as well (against a
    dummy hash made with the configured method), so that the time of the
    answer does not tell which emails have an account.
    """
    user = find_user(email)
    stored = user.password_hash if user is not None else _dummy_hash()
    matches = security.check_password_hash(stored, password)
    return user if user is not None and matches else None


def set_password(user: User, password: str) -> None:
    """Give ``user`` a new password and end every session it had.
    Raises ``ValueError`` with a message to show."""
    _check_new_password(password)
    user.set_password(password)
    end_sessions(user)


def end_sessions(user: User) -> None:
    """End every session of ``user`` (logout, password change): their
    session ids carry the old version, which no longer loads."""
    user.session_version = (user.session_version or 0) + 1
    get_state().db.session.commit()


def load_session_user(session_id: str) -> User | None:
    """The built-in user of a session id made by :meth:`User.get_id`, or
    ``None`` when it is not one, or its sessions were ended since."""
    if not session_id.startswith(SESSION_ID_PREFIX):
        return None
    user_id, _, version = session_id[len(SESSION_ID_PREFIX):].partition(":")
    if not (user_id.isdigit() and version.isdigit()) or len(user_id) > 18:
        return None
    user = get_state().db.session.get(User, int(user_id))
    if user is None or (user.session_version or 0) != int(version):
        return None
    return user


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


def list_api_keys(owner_id: str) -> list[ApiKey]:
    """The API keys of ``owner_id``, revoked ones included, oldest first."""
    db = get_state().db
    return list(db.session.execute(
        select(ApiKey).where(ApiKey.owner_id == owner_id).order_by(ApiKey.id)
    ).scalars())


def revoke_api_key(owner_id: str, key_id: int) -> bool:
    """Revoke the active key ``key_id`` of ``owner_id``; ``False`` when
    there is no such key (or it belongs to someone else)."""
    if not 0 < key_id < 2**31:  # beyond the column's range: no such key
        return False
    db = get_state().db
    row = db.session.execute(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.owner_id == owner_id, ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        return False
    row.revoked_at = utcnow()
    db.session.commit()
    return True


#: Seconds a key seen valid by this process stays accepted while the database
#: does not answer, so that conversions posted during an outage can be queued.
OUTAGE_KEY_SECONDS = 3600.0


def _seen_keys() -> dict[str, tuple[Principal, float]]:
    """The keys this app saw valid in this process: hash -> (principal, when)."""
    return current_app.extensions.setdefault("smstrack_seen_keys", {})


def principal_from_key(key: str) -> Principal | None:
    """The principal of an API key, or ``None`` for an unknown or revoked key.

    While the database does not answer, a key this process saw valid within
    the last hour is still accepted (a revocation made just before the
    outage reaches this process when the database is back)."""
    db = get_state().db
    key_hash = ApiKey.hash_key(key)
    seen_keys = _seen_keys()
    try:
        row = db.session.execute(
            select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        ).scalar_one_or_none()
    except (OperationalError, InterfaceError):
        db.session.rollback()
        seen = seen_keys.get(key_hash)
        if seen is None or time.monotonic() - seen[1] > OUTAGE_KEY_SECONDS:
            raise
        return seen[0]
    if row is None:
        seen_keys.pop(key_hash, None)
        return None
    principal = Principal(row.owner_id, row.is_admin)
    if len(seen_keys) > 10_000:
        seen_keys.clear()
    seen_keys[key_hash] = (principal, time.monotonic())
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=5):
        row.last_used_at = now
        try:
            db.session.commit()
        except (OperationalError, InterfaceError):
            db.session.rollback()
    return principal


def principal_from_user(user: Any) -> Principal | None:
    """The principal of a Flask-Login user, or ``None`` when not allowed."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    state = get_state()
    check = state.ext.access_check_func if state.ext is not None else None
    if check is not None and not check(user):
        return None
    is_admin = bool(getattr(user, "smstrack_admin", False))
    # A built-in user's session id carries its session version: campaigns
    # belong to its plain id.
    owner_id = str(user.id) if isinstance(user, User) else str(user.get_id())
    return Principal(owner_id, is_admin)


def current_principal() -> tuple[Principal | None, bool]:
    """Who the current request acts for, by API key or logged-in session,
    and whether it came by session (browsers send that on their own)."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return principal_from_key(key.strip()), False
    from flask_login import current_user

    if getattr(current_app, "login_manager", None) is None:
        return None, False
    return principal_from_user(current_user._get_current_object()), True
