"""Users and API keys: create-user, create-api-key, list-api-keys, revoke-api-key."""
from __future__ import annotations

import click

from ..auth import create_api_key, create_user, find_user
from .base import app_state, find_owner, smstrack_cli


@smstrack_cli.command("create-user")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters.")
@click.option("--admin", is_flag=True, help="Admins see every campaign.")
def create_user_command(email: str, password: str, admin: bool) -> None:
    """Create a dashboard and API user."""
    app_state()
    try:
        user = create_user(email, password, is_admin=admin)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Created {'admin' if admin else 'user'} {user.email} (id {user.id}).")


@smstrack_cli.command("create-api-key")
@click.argument("email")
@click.option("--name", help="A note to recognise the key by.")
def create_api_key_command(email: str, name: str | None) -> None:
    """Create an API key for a user and print it (it is shown only once)."""
    app_state()
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user {email}; create one with: flask smstrack create-user {email}")
    key, _ = create_api_key(str(user.id), is_admin=user.is_admin, name=name)
    click.echo(key)
    click.echo("Keep this key: it cannot be shown again. Send it as 'Authorization: Bearer <key>'.", err=True)


@smstrack_cli.command("list-api-keys")
@click.argument("email")
def list_api_keys_command(email: str) -> None:
    """List a user's API keys (their first characters only)."""
    from ..models import ApiKey

    state = app_state()
    owner = find_owner(email)
    keys = state.db.session.query(ApiKey).filter_by(owner_id=owner).order_by(ApiKey.id).all()
    if not keys:
        click.echo(f"{email} has no API keys.")
    for key in keys:
        status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"last used {key.last_used_at:%Y-%m-%d %H:%M} UTC" if key.last_used_at else "never used"
        click.echo(f"{key.prefix}...  {status}, {used}, created {key.created_at:%Y-%m-%d}{'  ' + key.name if key.name else ''}")


@smstrack_cli.command("revoke-api-key")
@click.argument("prefix")
def revoke_api_key_command(prefix: str) -> None:
    """Revoke an API key by its first characters, as list-api-keys shows them."""
    from ..auth import KEY_PREFIX, revoke_api_keys

    app_state()
    if not prefix.startswith(KEY_PREFIX) or len(prefix) < len(KEY_PREFIX) + 6:
        raise click.ClickException(f"give the key's first {len(KEY_PREFIX) + 6} characters, e.g. {KEY_PREFIX}AbC123")
    count = revoke_api_keys(prefix)
    if not count:
        raise click.ClickException(f"no active key starts with {prefix}; see flask smstrack list-api-keys EMAIL")
    click.echo(f"Revoked {count} key(s) starting with {prefix[: len(KEY_PREFIX) + 6]}.")
