"""A campaign's messages: templates, variants, per-recipient links, segments.

Preparing a campaign turns each recipient into a message ready to send:

1. the recipient is given a variant, by weight, deterministically and in
   balance (see :func:`assign_variants`);
2. each link the variant's template names gets a short code of the
   recipient's own, so a click tells who clicked;
3. the template is rendered: ``{link}`` (the campaign's first link),
   ``{link2}``, ``{link3}``... and the recipient's attributes
   (``{first_name}``, ``{city}``, any column of the imported file, and
   ``{phone}`` and ``{external_id}``). A missing attribute renders empty;
   ``{{`` and ``}}`` write a brace;
4. its encoding and segments are counted (see :mod:`.sms`).

Preparing again is safe: variants and codes given before are kept, and
messages not yet sent are rendered again from the current templates.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import current_app, has_request_context, request
from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..config import Keys
from ..manage import generate_code, short_url_for
from ..models import Campaign, Link, Recipient, utcnow
from ..state import get_state, links_changed
from .consent import consent_conditions, leave_out_without_consent
from .segments import SegmentInfo, segment_info
from .suppression import SUPPRESSED, hold_suppressed

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: A placeholder, or a doubled brace written for a brace itself.
_TOKEN_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LINK_RE = re.compile(r"link([1-9][0-9]*)?")
#: Recipients whose message may still change.
UNSENT = ("pending", "ready")
BATCH = 2000


class PrepareError(ValueError):
    """The campaign's messages cannot be rendered; the message says why."""


def link_number(name: str) -> int | None:
    """The 0-based index of the campaign link a placeholder names, if any."""
    match = _LINK_RE.fullmatch(name)
    if match is None:
        return None
    return int(match.group(1) or 1) - 1


def placeholders(template: str) -> list[str]:
    """The placeholder names of ``template``, in order, without repeats."""
    return list(dict.fromkeys(name for name in _TOKEN_RE.findall(template) if name))


def render(template: str, values: dict[str, str], links: list[str]) -> str:
    """``template`` with its placeholders filled in.

    ``links`` are the URLs for ``{link}``, ``{link2}``...; ``values`` the
    recipient's attributes. ``{{`` and ``}}`` write one brace; other braces
    stay as written.
    """

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        number = link_number(name)
        if number is not None:
            return links[number] if number < len(links) else match.group(0)
        return values.get(name) or ""

    return _TOKEN_RE.sub(fill, template)


def assign_variants(keys: Iterable[str], weights: list[int], counts: list[int] | None = None) -> list[int]:
    """The variant index for each of ``keys``, in balance with ``weights``.

    Keys are taken in the order of their SHA-256 (an order unrelated to the
    import order, the same on every run) and each goes to the variant
    furthest below its share so far, so after any number of recipients
    every variant is within one of its share. ``counts`` are recipients
    given each variant before (preparing again only adds to them).
    """
    keys = list(keys)
    counts = list(counts or [0] * len(weights))
    total_weight = sum(weights)
    n = sum(counts)
    order = sorted(range(len(keys)), key=lambda i: hashlib.sha256(keys[i].encode()).digest())
    result = [0] * len(keys)
    for i in order:
        n += 1
        best = max(range(len(weights)), key=lambda v: (weights[v] * n - counts[v] * total_weight, -v))
        counts[best] += 1
        result[i] = best
    return result


def public_base_url() -> str:
    """Where the short links are served, for links written into messages."""
    base = current_app.config[Keys.BASE_URL]
    if not base and has_request_context():
        base = request.host_url
    if not base:
        raise PrepareError(
            f"{Keys.BASE_URL} is not set: set it to the public address of the short links "
            "(for example https://sms.example.com) so messages carry full URLs"
        )
    return base.rstrip("/")


@dataclass(frozen=True)
class Template:
    """One message version: a variant's template, or the campaign's own."""

    variant_id: int | None
    name: str
    text: str
    weight: int = 1


def templates_of(campaign: Campaign) -> list[Template]:
    """The campaign's message versions: its variants, else its template."""
    if campaign.variants:
        return [Template(v.id, v.name, v.message_template, v.weight) for v in campaign.variants]
    if campaign.message_template:
        return [Template(None, "", campaign.message_template)]
    return []


def check_templates(campaign: Campaign) -> list[str]:
    """Problems that stop the messages from being rendered (empty if none)."""
    templates = templates_of(campaign)
    if not templates:
        return ["the campaign has no message: give it a message template or variants"]
    problems = []
    for t in templates:
        label = f"variant {t.name}" if t.variant_id else "the message template"
        for name in placeholders(t.text):
            number = link_number(name)
            if number is not None and number >= len(campaign.links):
                have = len(campaign.links)
                problems.append(
                    f"{label} uses {{{name}}} but the campaign has {have} link{'s' if have != 1 else ''}: add a link first"
                )
        if not t.text.strip():
            problems.append(f"{label} is empty")
    return problems


@dataclass
class Preview:
    """A template rendered with sample links, as the campaign form shows it."""

    name: str
    text: str
    info: SegmentInfo
    #: Segments of the same message without its links.
    segments_without_links: int
    #: Placeholders that are neither a link nor an imported attribute.
    unknown: list[str] = field(default_factory=list)

    @property
    def link_adds_segment(self) -> bool:
        return self.info.segments > self.segments_without_links

    def warning(self) -> str | None:
        if self.link_adds_segment:
            return (
                f"The short link takes this message from {self.segments_without_links} to "
                f"{self.info.segments} segments: shorten the text to pay for "
                f"{self.segments_without_links}."
            )
        return None


def sample_link(base: str) -> str:
    """A short URL as long as a real per-recipient one."""
    return short_url_for(base, "x" * max(current_app.config[Keys.CODE_LENGTH], 7))


def preview(template: str, *, values: dict[str, str] | None = None, links: int = 1, name: str = "",
            known: Iterable[str] = ()) -> Preview:
    """Render ``template`` with sample links and count its segments.

    ``values`` are a sample recipient's; without them, attribute
    placeholders are counted as written. ``known`` are the attribute names
    the recipients have: other placeholders are reported in ``unknown``.
    """
    try:
        base = public_base_url()
    except PrepareError:
        base = "https://example.com"
    url = sample_link(base)
    names = [n for n in placeholders(template) if link_number(n) is None]
    if values is None:
        values = {n: f"{{{n}}}" for n in names}
    text = render(template, values, [url] * max(links, 1))
    bare = render(template, values, [""] * max(links, 1))
    known = set(known) | {"phone", "external_id"}
    unknown = [n for n in names if n not in known]
    return Preview(name, text, segment_info(text), segment_info(bare).segments, unknown)


def sample_values(campaign_id: int) -> dict[str, str] | None:
    """The first recipient's placeholder values, as a sample."""
    r = Recipient.__table__.c
    row = get_state().db.session.execute(
        select(r.phone, r.external_id, r.attributes).where(r.campaign_id == campaign_id).order_by(r.id).limit(1)
    ).first()
    if row is None:
        return None
    return {**(row.attributes or {}), "phone": row.phone, "external_id": row.external_id or ""}


def attribute_names(campaign_id: int) -> set[str]:
    """Attribute names of the campaign's imported recipients."""
    table = Recipient.__table__
    names: set[str] = set()
    rows = get_state().db.session.execute(
        select(table.c.attributes).where(table.c.campaign_id == campaign_id).limit(1000)
    )
    for (attributes,) in rows:
        names.update(attributes or {})
    return names


@dataclass
class PrepareResult:
    #: Messages rendered in this run.
    prepared: int = 0
    #: Recipients given a variant in this run.
    assigned: int = 0
    #: Per-recipient links made in this run.
    links_created: int = 0
    #: Messages whose links push them into one more segment.
    link_adds_segment: int = 0
    #: Recipients per template name.
    per_variant: dict[str, int] = field(default_factory=dict)
    #: Recipients not texted: their number opted out.
    suppressed: int = 0
    #: Recipients left out for want of a consent record (see :mod:`.consent`).
    no_consent: int = 0


def _new_codes(count: int, session) -> list[str]:
    """``count`` fresh per-recipient codes, checked against the table."""
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        batch = [generate_code() for _ in range(min(count - len(codes), BATCH))]
        batch = [c for c in dict.fromkeys(batch) if c not in seen]
        taken = set(session.execute(select(Link.code).where(Link.code.in_(batch))).scalars())
        for code in batch:
            if code not in taken:
                codes.append(code)
                seen.add(code)
    return codes


def prepare_messages(campaign: Campaign, progress: Callable[[int], None] | None = None) -> PrepareResult:
    """Give each unsent recipient a variant, links and a rendered message.

    Raises :class:`PrepareError` when the templates cannot be rendered.
    ``progress`` is called with the number of recipients done. Two prepares
    of one campaign at once (a double click, two senders) both succeed: the
    one that loses the race for a recipient's link starts again and finds it.
    """
    for attempt in range(3):
        try:
            return _prepare(campaign, progress)
        except IntegrityError:
            get_state().db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _prepare(campaign: Campaign, progress: Callable[[int], None] | None) -> PrepareResult:
    problems = check_templates(campaign)
    if problems:
        raise PrepareError("; ".join(problems))
    base = public_base_url()
    state = get_state()
    session = state.db.session
    r = Recipient.__table__.c
    templates = templates_of(campaign)
    by_variant = {t.variant_id: i for i, t in enumerate(templates)}
    result = PrepareResult(no_consent=leave_out_without_consent(campaign.id), suppressed=hold_suppressed(campaign.id))

    counts = [0] * len(templates)
    for variant_id, n in session.execute(
        select(r.variant_id, func.count())
        .where(r.campaign_id == campaign.id, r.status.not_in((*UNSENT, SUPPRESSED))).group_by(r.variant_id)
    ):
        if variant_id in by_variant:
            counts[by_variant[variant_id]] += n
    rows = session.execute(
        select(r.id, r.phone, r.external_id, r.attributes, r.variant_id)
        # A forgotten or erased number (no phone) is never sent.
        .where(r.campaign_id == campaign.id, r.status.in_(UNSENT), r.phone.is_not(None), *consent_conditions())
        .order_by(r.id)
    ).all()
    if not rows:
        session.commit()
        return result

    # 1. Variants: keep the ones given before, place the others in balance.
    if templates[0].variant_id is None:  # one message, no variants
        chosen: list[int | None] = [0] * len(rows)
    else:
        chosen = [by_variant.get(row.variant_id) for row in rows]
    for index in chosen:
        if index is not None:
            counts[index] += 1
    unplaced = [i for i, index in enumerate(chosen) if index is None]
    if unplaced:
        picks = assign_variants(
            [f"{campaign.id}:{rows[i].phone}" for i in unplaced], [t.weight for t in templates], counts
        )
        for i, pick in zip(unplaced, picks):
            chosen[i] = pick
        result.assigned = len(unplaced)

    # 2. Links: one code per recipient and campaign link the template names.
    campaign_links = list(campaign.links)
    wanted = [
        sorted({n for name in placeholders(t.text) if (n := link_number(name)) is not None}) for t in templates
    ]
    existing: dict[tuple[int, int], str] = {
        (parent, recipient): code
        for parent, recipient, code in session.execute(
            select(Link.parent_id, Link.recipient_id, Link.code).where(
                Link.campaign_id == campaign.id, Link.recipient_id.is_not(None)
            )
        )
    }
    linked_before = {recipient for _, recipient in existing}
    missing = [
        (row, campaign_links[n], templates[index].variant_id)
        for row, index in zip(rows, chosen)
        for n in wanted[index]
        if (campaign_links[n].id, row.id) not in existing
    ]
    if missing:
        codes = _new_codes(len(missing), session)
        now = utcnow()
        values = []
        for (row, parent, variant_id), code in zip(missing, codes):
            existing[(parent.id, row.id)] = code
            values.append(
                {
                    "campaign_id": campaign.id, "code": code, "destination_url": parent.destination_url,
                    "append_click_id": parent.append_click_id, "utm": parent.utm, "recipient_id": row.id,
                    "variant_id": variant_id, "parent_id": parent.id, "created_at": now,
                }
            )
        for start in range(0, len(values), BATCH):
            session.execute(insert(Link.__table__), values[start:start + BATCH])
        result.links_created = len(values)

    # 3. Render and count.
    link_ids = [link.id for link in campaign_links]
    updates = []
    per_variant: Counter[str] = Counter()
    for row, index in zip(rows, chosen):
        template = templates[index]
        values = {**(row.attributes or {}), "phone": row.phone, "external_id": row.external_id or ""}
        urls = [
            short_url_for(base, existing[(link_ids[n], row.id)]) if n in wanted[index] else "" for n in range(len(link_ids))
        ]
        text = render(template.text, values, urls)
        info = segment_info(text)
        if wanted[index]:
            bare = segment_info(render(template.text, values, [""] * len(link_ids))).segments
            if info.segments > bare:
                result.link_adds_segment += 1
        updates.append(
            {"rid": row.id, "variant_id": template.variant_id, "message": text, "segments": info.segments, "status": "ready"}
        )
        per_variant[template.name] += 1
        if progress is not None and len(updates) % 500 == 0:
            progress(500)
    statement = (
        update(Recipient.__table__)
        .where(r.id == bindparam("rid"), or_(r.status == "pending", r.status == "ready"))
        .values(
            variant_id=bindparam("variant_id"),
            message=bindparam("message"),
            segments=bindparam("segments"),
            status=bindparam("status"),
        )
    )
    connection = session.connection()
    for start in range(0, len(updates), BATCH):
        connection.execute(statement, updates[start:start + BATCH])
    # Links made before a recipient's variant changed (variants added or
    # removed before sending) carry the new one, so clicks count for it.
    moved = [
        {"rid": row.id, "variant_id": templates[index].variant_id}
        for row, index in zip(rows, chosen)
        if row.id in linked_before and row.variant_id != templates[index].variant_id
    ]
    relink = (
        update(Link.__table__)
        .where(Link.__table__.c.recipient_id == bindparam("rid"), Link.__table__.c.parent_id.is_not(None))
        .values(variant_id=bindparam("variant_id"))
    )
    for start in range(0, len(moved), BATCH):
        connection.execute(relink, moved[start:start + BATCH])
    # Their links now count clicks for another variant: every process reads
    # them again.
    moved_ids = [item["rid"] for item in moved]
    changed = [
        code
        for start in range(0, len(moved_ids), BATCH)
        for code in connection.execute(
            select(Link.__table__.c.code).where(
                Link.__table__.c.recipient_id.in_(moved_ids[start:start + BATCH]),
                Link.__table__.c.parent_id.is_not(None),
            )
        ).scalars()
    ]
    session.commit()
    if changed:
        links_changed(dropped=changed)
    if progress is not None:
        progress(len(updates) % 500)
    result.prepared = len(updates)
    result.per_variant = dict(per_variant)
    return result


def variant_names(campaign: Campaign) -> dict[int, str]:
    return {v.id: v.name for v in campaign.variants}
