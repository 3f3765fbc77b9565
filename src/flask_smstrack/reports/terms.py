"""The words of the funnel, one per concept, as the dashboard, the CSV
headers and the API's field descriptions all use them.

sent -> reached -> unique clicks -> conversions: CTR is unique clicks
divided by *reached*, the conversion rate conversions divided by unique
clicks. Delivered is what receipts confirmed; reached also counts the
messages still without a receipt (only one reported undelivered drops out).
"""
from __future__ import annotations

#: key -> (label, what it counts)
TERMS: dict[str, tuple[str, str]] = {
    "sent": ("Sent", (
        "Messages handed to the SMS provider or exported; without imported recipients, "
        "the number entered on the campaign.")),
    "delivered": ("Delivered", (
        "Messages a delivery receipt confirmed (or the number entered on the campaign); null while unknown.")),
    "undelivered": ("Undelivered", "Messages a delivery receipt called undelivered or failed; null without receipts."),
    "reached": ("Reached", (
        "Sent minus those a receipt called undelivered (delivered, or no receipt yet); "
        "equal to delivered when that was entered by hand. What CTR divides by.")),
    "clicks": ("Clicks", "Clicks by people, repeats included; link previews and bots are left out."),
    "unique_clicks": ("Unique clicks", "People who clicked: first clicks by people."),
    "ctr": ("CTR", "Unique clicks / reached, as a fraction."),
    "conversions": ("Conversions", "Sales and sign-ups attributed to the campaign's clicks."),
    "conversion_rate": ("Conversion rate", "Conversions / unique clicks, as a fraction."),
}


def label(key: str) -> str:
    """The word shown for ``key``."""
    return TERMS[key][0]


def api_descriptions() -> dict[str, dict[str, str]]:
    """``{field: {"description": ...}}`` for the OpenAPI schemas."""
    return {key: {"description": text} for key, (_, text) in TERMS.items()}


def with_descriptions(properties: dict[str, dict]) -> dict[str, dict]:
    """OpenAPI ``properties`` with each funnel field's description added."""
    for key, (_, text) in TERMS.items():
        if key in properties:
            properties[key] = {**properties[key], "description": text}
    return properties
