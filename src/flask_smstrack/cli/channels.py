"""What the SMS commands share about channels: they refuse campaigns of
other channels (email, social, QR code, print, other)."""
from __future__ import annotations

import click

from ..models import Campaign
from ..models.channels import is_sms, sms_only_message


def require_sms(campaign: Campaign) -> Campaign:
    """``campaign`` if it is an SMS campaign, else a usage error saying why."""
    if not is_sms(campaign):
        raise click.ClickException(sms_only_message(campaign))
    return campaign
