"""Whether a message tells its recipients how to stop the messages.

Carriers and the law (TCPA in the US, PECR in the UK) expect every marketing
text to say how to opt out, such as "Reply STOP to opt out". A template has an
opt-out instruction when it names, as a whole word and in any case, STOP,
UNSUBSCRIBE, "opt out" or "opt-out" (also "optout"), or one of the localised
reply words of ``SMSTRACK_OPT_OUT_KEYWORDS`` ("ARRET", "BAJA"...).
"STOPWATCH" or "non-stop" do not count; placeholders (``{stop}``) do not
either: they are not the text the recipient reads.

A template without one gets a warning in the campaign form, the message
preview API and the CLI; with ``SMSTRACK_REQUIRE_OPT_OUT_TEXT`` on, sending
the campaign is refused (:func:`check_opt_out_text`).
"""
from __future__ import annotations

import re
from typing import Iterable

from flask import current_app

from ..config import Keys
from ..models import Campaign
from .messages import Template, templates_of
from .optouts import configured_keywords
from .twilio import SendError

#: The words and phrases every opt-out instruction may use.
BUILT_IN = ("STOP", "UNSUBSCRIBE", "opt out", "opt-out", "optout")
#: What the warnings suggest adding.
EXAMPLE = "“Reply STOP to opt out”"

_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{[A-Za-z_][A-Za-z0-9_]*\}")
# "opt out" with any run of spaces or one hyphen between the words.
_BUILT_IN_RE = r"STOP|UNSUBSCRIBE|opt(?:[\s\u00a0]+|[-\u2010\u2011])?out"


class OptOutTextMissing(SendError):
    """``SMSTRACK_REQUIRE_OPT_OUT_TEXT`` is on and a message of the campaign
    has no opt-out instruction; the message names which and what to add."""


def opt_out_pattern(keywords: Iterable[str] | None = None) -> re.Pattern[str]:
    """The regular expression of an opt-out instruction: the built-in words
    and ``keywords`` (default ``SMSTRACK_OPT_OUT_KEYWORDS``), whole words,
    any case."""
    if keywords is None:
        keywords = configured_keywords(Keys.OPT_OUT_KEYWORDS)
    extra = "".join(f"|{re.escape(w)}" for w in sorted(set(keywords), key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{_BUILT_IN_RE}{extra})(?![\w-])", re.IGNORECASE)


def has_opt_out_text(text: str, keywords: Iterable[str] | None = None) -> bool:
    """Whether ``text`` (a template or a message) tells how to opt out."""
    return bool(opt_out_pattern(keywords).search(_PLACEHOLDER_RE.sub(" ", text or "")))


def opt_out_text_required() -> bool:
    """``SMSTRACK_REQUIRE_OPT_OUT_TEXT``, read as a switch."""
    value = current_app.config[Keys.REQUIRE_OPT_OUT_TEXT]
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def opt_out_warning(text: str) -> str | None:
    """The warning for one message's text, ``None`` when it has an opt-out
    instruction. It says when sending will be refused."""
    if has_opt_out_text(text):
        return None
    if opt_out_text_required():
        return (
            f"No opt-out instruction: sending will be refused ({Keys.REQUIRE_OPT_OUT_TEXT} is on). "
            f"Add one such as {EXAMPLE}."
        )
    return f"No opt-out instruction: add one such as {EXAMPLE}, so recipients know how to stop your messages."


def label_of(template: Template) -> str:
    """``variant B`` or ``the message``, as the warnings name a template."""
    return f"variant {template.name}" if template.variant_id is not None else "the message"


def missing_opt_out_text(campaign: Campaign) -> list[Template]:
    """The campaign's message versions (variants, else its template) that
    have no opt-out instruction."""
    pattern = opt_out_pattern()
    return [t for t in templates_of(campaign) if not pattern.search(_PLACEHOLDER_RE.sub(" ", t.text))]


def campaign_warnings(campaign: Campaign) -> list[str]:
    """One line per message version without an opt-out instruction."""
    required = opt_out_text_required()
    return [
        f"{label_of(t)[0].upper()}{label_of(t)[1:]} has no opt-out instruction: add one such as {EXAMPLE}"
        + (f" ({Keys.REQUIRE_OPT_OUT_TEXT} refuses to send it)." if required else ".")
        for t in missing_opt_out_text(campaign)
    ]


def check_opt_out_text(campaign: Campaign) -> None:
    """Raise :class:`OptOutTextMissing` when ``SMSTRACK_REQUIRE_OPT_OUT_TEXT``
    is on and a message version of ``campaign`` has no opt-out instruction."""
    if not opt_out_text_required():
        return
    missing = missing_opt_out_text(campaign)
    if missing:
        names = " and ".join(label_of(t) for t in missing)
        raise OptOutTextMissing(
            f"campaign {campaign.id} not sent: {names} {'has' if len(missing) == 1 else 'have'} no opt-out "
            f"instruction and {Keys.REQUIRE_OPT_OUT_TEXT} is on. Add one such as {EXAMPLE} "
            f"(STOP, UNSUBSCRIBE or “opt out”, or a word of {Keys.OPT_OUT_KEYWORDS}) and send again"
        )
