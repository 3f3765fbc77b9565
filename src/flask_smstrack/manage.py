"""Creating and editing campaigns and links, shared by the API, the CLI and
the dashboard. Input arrives already validated by :mod:`.schemas`."""
from __future__ import annotations

import secrets
import string
from typing import Any

from flask import current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .config import Keys
from .models import Campaign, Link, LinkDestination, Variant
from .models.channels import UTM_MEDIUM_CHANNELS
from .schemas import COST_FIELDS, MAX_ID
from .state import get_state, links_changed

_BASE62 = string.digits + string.ascii_letters
#: Generated codes are never shorter than this (62^7 is about 3.5e12).
MIN_CODE_LENGTH = 7


class CodeTaken(ValueError):
    """The custom code asked for is already used by another link."""


def generate_code(length: int | None = None) -> str:
    """A random base62 code that cannot be guessed from other codes: one
    uniform draw below 62^length, written in base62."""
    length = max(MIN_CODE_LENGTH, length or current_app.config[Keys.CODE_LENGTH])
    number = secrets.randbelow(62**length)
    digits = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)


def create_campaign(data: dict[str, Any], owner_id: str | None) -> Campaign:
    db = get_state().db
    campaign = Campaign(owner_id=owner_id, **data)
    db.session.add(campaign)
    db.session.commit()
    return campaign


def create_link(campaign: Campaign, data: dict[str, Any]) -> Link:
    """Add a link to ``campaign``; raises :class:`CodeTaken` for a used code."""
    db = get_state().db
    custom = data.get("code")
    for _ in range(5):
        link = Link(
            campaign_id=campaign.id,
            code=custom or generate_code(),
            destination_url=data["destination_url"],
            append_click_id=data.get("append_click_id", True),
            utm=default_utm(campaign, data.get("utm")),
        )
        set_destinations(link, data.get("destinations") or [])
        db.session.add(link)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            if custom:
                raise CodeTaken(custom) from None
            continue
        # Every node serves it at once, even before it reads the database.
        links_changed(stored=[link.code])
        return link
    raise RuntimeError(f"Could not find a free short code after 5 tries; raise {Keys.CODE_LENGTH}.")


def update_campaign(campaign: Campaign, data: dict[str, Any]) -> Campaign:
    """Apply a validated partial edit to ``campaign`` and commit: a cost
    given replaces the campaign's other way of giving one."""
    if any(data.get(name) is not None for name in COST_FIELDS):
        data = {**{name: None for name in COST_FIELDS}, **data}
    refallback = data.get("fallback_url", campaign.fallback_url) != campaign.fallback_url
    for key, value in data.items():
        setattr(campaign, key, value)
    get_state().db.session.commit()
    for link in campaign.links if refallback else ():
        forget_link(link)
    return campaign


def default_utm(campaign: Campaign, utm: dict[str, str] | None) -> dict[str, str] | None:
    """A new link's UTM parameters: those given, and ``utm_medium`` set to
    the campaign's channel unless given (see ``UTM_MEDIUM_CHANNELS``)."""
    utm = dict(utm or {})
    if "utm_medium" not in utm and (campaign.channel or "sms") in UTM_MEDIUM_CHANNELS:
        utm["utm_medium"] = campaign.channel
    return utm or None


#: What a link edit may change.
LINK_EDIT_FIELDS = ("destination_url", "utm", "append_click_id", "disabled", "expires_at")


def get_link(ref: int | str) -> Link | None:
    """The link with id ``ref`` (an int, or a string of digits), else the
    link whose code is ``ref``; ``None`` when there is none."""
    session = get_state().db.session
    text = str(ref)
    if text.isdigit() and 0 < int(text) <= MAX_ID:
        link = session.get(Link, int(text))
        if link is not None or not isinstance(ref, str):
            return link
    return session.execute(select(Link).where(Link.code == text)).scalar()


def update_link(link: Link, data: dict[str, Any]) -> Link:
    """Apply a validated edit (:data:`LINK_EDIT_FIELDS`) to ``link`` and
    commit. Recipients' own links follow their campaign link when clicked;
    see :func:`forget_link` for when each process sees the edit."""
    db = get_state().db
    for name in LINK_EDIT_FIELDS:
        if name in data:
            value = data[name]
            setattr(link, name, (value or None) if name == "utm" else value)
    if "destinations" in data:
        set_destinations(link, data["destinations"])
    db.session.commit()
    forget_link(link)
    return link


def set_destinations(link: Link, items: list[dict[str, Any]]) -> None:
    """Make ``items`` (validated ``label``, ``url``, ``weight``) the link's
    landing-page test, numbered 1, 2, ... in order; ``[]`` ends the test.
    A number keeps its row (and its clicks' history) when edited. The
    caller commits."""
    existing = {d.number: d for d in link.destinations}
    for number, item in enumerate(items, 1):
        found = existing.pop(number, None)
        if found is None:
            link.destinations.append(LinkDestination(number=number, **item))
        else:
            found.label, found.url, found.weight = item["label"], item["url"], item["weight"]
    for gone in existing.values():
        link.destinations.remove(gone)


def forget_link(link: Link) -> None:
    """``link`` changed (committed): this process forgets it and its
    recipients' own links at once. With ``SMSTRACK_REDIS_URL`` the shared
    cache holds the link as it is now and every process forgets them within
    a second; without it, other processes see the change within
    ``SMSTRACK_LINK_CACHE_TTL``."""
    children = get_state().db.session.execute(select(Link.code).where(Link.parent_id == link.id)).scalars()
    links_changed(stored=[link.code], dropped=list(children))


def add_variant(campaign: Campaign, data: dict[str, Any]) -> Variant:
    """Add a message variant to ``campaign`` (its name is checked unique)."""
    db = get_state().db
    variant = Variant(campaign_id=campaign.id, **data)
    db.session.add(variant)
    db.session.commit()
    return variant


def remove_variant(variant: Variant) -> None:
    """Delete a variant; its recipients are placed again at the next prepare."""
    db = get_state().db
    db.session.delete(variant)
    db.session.commit()


def sync_variants(campaign: Campaign, wanted: list[dict[str, Any]]) -> None:
    """Make the campaign's variants ``wanted`` (each with its ``id`` when it
    exists already); the caller commits. Only before messages are sent."""
    db = get_state().db
    keep = {item["id"] for item in wanted if item.get("id")}
    for variant in list(campaign.variants):
        if variant.id not in keep:
            campaign.variants.remove(variant)
    db.session.flush()
    existing = {v.id: v for v in campaign.variants}
    for item in wanted:
        fields = {k: item[k] for k in ("name", "message_template", "weight")}
        variant = existing.get(item.get("id"))
        if variant is None:
            campaign.variants.append(Variant(**fields))
        else:
            for key, value in fields.items():
                setattr(variant, key, value)


def short_url(link: Link, base: str | None = None) -> str:
    """The public short URL of ``link``: on ``base``, else
    ``SMSTRACK_BASE_URL``, else the current request's address."""
    base = base or current_app.config[Keys.BASE_URL]
    if not base:
        try:
            base = request.host_url
        except RuntimeError:
            base = ""
    return short_url_for(base.rstrip("/"), link.code)


def short_url_for(base: str, code: str) -> str:
    """The short URL of ``code`` on ``base`` (no trailing slash)."""
    prefix = current_app.config[Keys.LINK_PREFIX].strip("/")
    return f"{base}/{prefix}/{code}" if prefix else f"{base}/{code}"


def get_campaign(campaign_id: int) -> Campaign | None:
    """The campaign, or ``None``; an id beyond what the column holds is not looked up."""
    if not 0 < campaign_id <= MAX_ID:
        return None
    return get_state().db.session.get(Campaign, campaign_id)


def list_campaigns(owner_id: str | None, *, is_admin: bool = False) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.id.desc())
    if not is_admin:
        query = query.where(Campaign.owner_id == owner_id)
    return list(get_state().db.session.execute(query).scalars())
