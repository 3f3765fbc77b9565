"""The channels a campaign can run in, and what only SMS campaigns have."""
from __future__ import annotations

#: A campaign's ``channel``; ``sms`` is the default (and every campaign
#: made before channels existed).
CHANNELS = ("sms", "email", "social", "qr", "print", "other")

#: The channels as the campaign form offers them.
CHANNEL_CHOICES = (
    ("sms", "SMS"), ("email", "Email"), ("social", "Social media"), ("qr", "QR code"), ("print", "Print"),
    ("other", "Other"),
)

#: The channels whose new links get ``utm_medium=<channel>`` unless it is
#: given. SMS links keep what they had before channels (no default medium).
UTM_MEDIUM_CHANNELS = ("email", "social", "qr", "print")

#: Campaign fields that mean something for SMS campaigns only.
SMS_ONLY_FIELDS = ("message_template", "cost_per_message", "cost_per_segment")


def is_sms(campaign) -> bool:
    """Whether ``campaign`` (a :class:`~flask_smstrack.models.Campaign`) is an SMS campaign."""
    return (campaign.channel or "sms") == "sms"


def sms_only_message(campaign) -> str:
    """Why an SMS feature is refused for ``campaign``."""
    return (
        f"Campaign {campaign.id} is a {campaign.channel} campaign: recipients, messages, variants and sending "
        "are for SMS campaigns only."
    )


def channel_change_problem(campaign, channel: str) -> str | None:
    """Why ``campaign`` cannot become a ``channel`` campaign, or ``None``:
    an SMS campaign with recipients or message variants stays one."""
    if channel == "sms" or not is_sms(campaign) or campaign.id is None:
        return None
    if campaign.recipient_count() or campaign.variants:
        return f"Campaign {campaign.id} has SMS recipients or message variants: it stays an SMS campaign."
    return None
