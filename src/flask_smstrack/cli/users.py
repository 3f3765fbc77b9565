"""Users and API keys: create-user, set-password, create-api-key,
list-api-keys, revoke-api-key."""
from __future__ import annotations

import sys

import click

from ..auth import create_api_key, create_user, list_api_keys, set_password
from ..web.limits import unlock_account
from .base import app_state, builtin_user, smstrack_cli


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


@smstrack_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def set_password_command(email: str, password_stdin: bool) -> None:
    """Set a built-in user's password (admins too: the way back in after a
    lost password), log out all of its sessions and end a lockout after
    failed logins."""
    app_state()
    user = builtin_user(email)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        set_password(user, password)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    unlock_account(user.email)
    click.echo(f"Password of {user.email} set; its sessions are logged out and any lockout after failed logins ended.")


def _owner(email: str | None, owner_id: str | None) -> tuple[str, bool | None]:
    """The owner id named by EMAIL or --owner-id, and whether the built-in
    user is an admin (``None`` for a host app's user)."""
    if (email is None) == (owner_id is None):
        raise click.UsageError("give a built-in user's EMAIL, or --owner-id with your app's user id")
    if owner_id is not None:
        owner_id = owner_id.strip()
        if not owner_id or len(owner_id) > 255:
            raise click.UsageError("--owner-id must be 1 to 255 characters: your app's user.get_id()")
        return owner_id, None
    user = builtin_user(email)
    return str(user.id), user.is_admin


@smstrack_cli.command("create-api-key")
@click.argument("email", required=False)
@click.option("--owner-id", help="The id of a user of your own app (its user.get_id()), instead of EMAIL.")
@click.option("--admin", is_flag=True, help="With --owner-id: the key sees every campaign.")
@click.option("--name", help="A note to recognise the key by.")
def create_api_key_command(email: str | None, owner_id: str | None, admin: bool, name: str | None) -> None:
    """Create an API key for a built-in user (EMAIL) or a user of your own
    app (--owner-id), and print it (it is shown only once)."""
    app_state()
    owner, is_admin = _owner(email, owner_id)
    if is_admin is not None and admin:
        raise click.UsageError("--admin is for --owner-id; a built-in user's keys follow its own admin flag")
    key, _ = create_api_key(owner, is_admin=admin if is_admin is None else is_admin, name=name)
    click.echo(key)
    click.echo("Keep this key: it cannot be shown again. Send it as 'Authorization: Bearer <key>'.", err=True)


@smstrack_cli.command("list-api-keys")
@click.argument("email", required=False)
@click.option("--owner-id", help="The id of a user of your own app, instead of EMAIL.")
def list_api_keys_command(email: str | None, owner_id: str | None) -> None:
    """List a user's API keys (their first characters only)."""
    app_state()
    owner, _ = _owner(email, owner_id)
    keys = list_api_keys(owner)
    if not keys:
        click.echo(f"{email or owner} has no API keys.")
    for key in keys:
        status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"last used {key.last_used_at:%Y-%m-%d %H:%M} UTC" if key.last_used_at else "never used"
        admin = ", admin" if key.is_admin else ""
        click.echo(f"{key.prefix}...  {status}{admin}, {used}, created {key.created_at:%Y-%m-%d}{'  ' + key.name if key.name else ''}")


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
