"""Changing links: ``update-link`` and ``disable-link``."""
from __future__ import annotations

from typing import Any

import click
from marshmallow import ValidationError

from ..manage import get_link, update_link
from ..models import Link
from ..web.link_schemas import load_link_update
from .base import app_state, smstrack_cli, validation_error
from .campaigns import link_url


def _link_or_fail(ref: str) -> Link:
    app_state()
    link = get_link(ref)
    if link is None:
        raise click.ClickException(f"no link with id or code {ref!r}")
    if link.parent_id is not None:
        raise click.ClickException(
            f"{ref!r} is a recipient's own link; it follows its campaign link: change link {link.parent_id}"
        )
    return link


def _apply(link: Link, raw: dict[str, Any]) -> None:
    try:
        data = load_link_update(raw)
    except ValidationError as err:
        raise validation_error(err) from None
    update_link(link, data)
    utm = ", ".join(f"{k}={v}" for k, v in (link.utm or {}).items()) or "none"
    state = "disabled" if link.disabled else "enabled"
    expires = link.expires_at.isoformat() if link.expires_at else "never"
    click.echo(f"Link {link.id} ({link_url(link)}) -> {link.destination_url}")
    click.echo(f"  UTM: {utm}; click id: {'on' if link.append_click_id else 'off'}; {state}; expires: {expires}")
    for d in link.destinations:
        click.echo(f"  destination {d.number}: {d.label} ({d.weight}): {d.url}")


def _splits(items: tuple[str, ...]) -> list[dict[str, Any]]:
    """``--split LABEL=WEIGHT=URL`` values as the API's ``destinations``."""
    out = []
    for item in items:
        label, _, rest = item.partition("=")
        weight, sep, url = rest.partition("=")
        if not sep:
            raise click.UsageError(f"--split takes LABEL=WEIGHT=URL, not {item!r}")
        out.append({"label": label, "url": url, "weight": int(weight) if weight.strip().isdigit() else weight})
    return out


@smstrack_cli.command("update-link")
@click.argument("link_ref", metavar="LINK_ID_OR_CODE")
@click.option("--destination", help="The new destination URL (http:// or https://).")
@click.option("--utm", multiple=True, metavar="KEY=VALUE",
              help="A UTM parameter, e.g. utm_source=sms; repeat it. The ones given replace the link's UTM set.")
@click.option("--no-utm", is_flag=True, help="Remove the link's UTM parameters.")
@click.option("--click-id/--no-click-id", default=None, help="Add the click id to the destination, or stop adding it.")
@click.option("--expires-at", metavar="ISO", help="When the link ends: ISO 8601 with its UTC offset, e.g. 2027-01-31T23:59:00+01:00.")
@click.option("--no-expiry", is_flag=True, help="Remove the link's end.")
@click.option("--split", multiple=True, metavar="LABEL=WEIGHT=URL",
              help="A landing-page test's destination, e.g. 'Offer=30=https://shop.example.com/offer'; repeat it "
                   "(2 to 10). The ones given replace the link's destinations.")
@click.option("--no-split", is_flag=True, help="End the landing-page test: every visitor goes to --destination.")
def update_link_command(link_ref, destination, utm, no_utm, click_id, expires_at, no_expiry, split, no_split) -> None:
    """Change a campaign link (by id, else by code) and print it. This
    process sees it at once, running servers within SMSTRACK_LINK_CACHE_TTL."""
    if expires_at and no_expiry:
        raise click.UsageError("give --expires-at or --no-expiry, not both")
    if utm and no_utm:
        raise click.UsageError("give --utm or --no-utm, not both")
    link = _link_or_fail(link_ref)
    raw: dict[str, Any] = {}
    if destination is not None:
        raw["destination_url"] = destination
    if utm:
        pairs = [item.partition("=") for item in utm]
        wrong = [item for item, (_, sep, _v) in zip(utm, pairs) if not sep]
        if wrong:
            raise click.UsageError(f"--utm takes KEY=VALUE, not {wrong[0]!r}")
        raw["utm"] = {key.strip(): value for key, _, value in pairs}
    if no_utm:
        raw["utm"] = None
    if click_id is not None:
        raw["append_click_id"] = click_id
    if expires_at:
        raw["expires_at"] = expires_at
    if no_expiry:
        raw["expires_at"] = None
    if split and no_split:
        raise click.UsageError("give --split or --no-split, not both")
    if split or no_split:
        raw["destinations"] = _splits(split)
    if not raw:
        raise click.UsageError("nothing to change: give --destination, --utm, --no-utm, --click-id/--no-click-id, "
                               "--expires-at, --no-expiry, --split or --no-split")
    _apply(link, raw)


@smstrack_cli.command("disable-link")
@click.argument("link_ref", metavar="LINK_ID_OR_CODE")
@click.option("--enable", is_flag=True, help="Enable the link again.")
def disable_link_command(link_ref, enable) -> None:
    """Disable a campaign link (its taps are not counted and go to the
    fallback), or enable it again with --enable; prints the link."""
    _apply(_link_or_fail(link_ref), {"disabled": not enable})
