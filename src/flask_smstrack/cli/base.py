"""The command group and what its commands share."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from marshmallow import ValidationError

from ..auth import find_user
from ..manage import get_campaign
from ..models import Campaign, User
from ..state import get_state

smstrack_cli = AppGroup("smstrack", help="SMS link tracking: database, users, campaigns, reports.")


def app_state():
    try:
        return get_state()
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None


def validation_error(err: ValidationError) -> click.ClickException:
    lines = [
        f"{field}: {' '.join(m if isinstance(m, str) else json.dumps(m) for m in msgs)}"
        if not isinstance(msgs, dict) else f"{field}: {json.dumps(msgs)}"  # by position in a list
        for field, msgs in err.messages.items()
    ]
    return click.ClickException("invalid input:\n  " + "\n  ".join(lines))


def builtin_user(email: str) -> User:
    """The built-in user with this email, or a message saying how to make one."""
    user = find_user(email)
    if user is None:
        raise click.ClickException(f"no user {email}; create one with: flask smstrack create-user {email} --password ...")
    return user


def find_owner(email: str | None) -> str | None:
    return None if email is None else str(builtin_user(email).id)


def campaign_or_fail(campaign_id: int) -> Campaign:
    app_state()
    campaign = get_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    return campaign


def warn_opt_out_text(text: str | None = None, *, campaign: Campaign | None = None) -> None:
    """Print to stderr the opt-out warning of one message's ``text``, or of
    each of ``campaign``'s message versions (see :mod:`..sms.opt_out_text`)."""
    from ..sms.opt_out_text import campaign_warnings, opt_out_warning

    lines = campaign_warnings(campaign) if campaign is not None else [opt_out_warning(text or "")]
    for line in lines:
        if line:
            click.echo(f"Warning: {line}", err=True)
