"""A link's landing-page test: its destinations compared on visitors,
conversion rate and revenue per click, with the significance test and the
verdicts of the message variants' A/B test (:mod:`.verdicts`)."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import String, case, cast, func, select

from ..models import Click, Conversion, Link
from ..state import get_state
from .campaign import counted_revenue, ratio
from .tables import Column, Table
from .verdicts import compare_variants, summary_verdict

_c = Click.__table__.c
_v = Conversion.__table__.c

#: One visitor: a recipient on their own link, else a browser (its first
#: click id, which the attribution cookie leads to).
_VISITOR = case(
    (_c.recipient_id.is_not(None), "r" + cast(_c.recipient_id, String)),
    else_="v" + func.coalesce(_c.visitor_id, _c.click_id),
)

COLUMNS = [
    Column("destination", "Destination", "text"),
    Column("url", "URL", "text"),
    Column("weight", "Weight"),
    Column("visitors", "Visitors"),
    Column("conversions", "Conversions"),
    Column("conversion_rate", "Conversion rate", "rate"),
    Column("cr_p", "p-value", "number"),
    Column("cr_beats", "Chance to beat the first", "rate"),
    Column("revenue", "Revenue", "money"),
    Column("revenue_per_click", "Revenue per click", "money"),
]


def _counts(link_id: int, currency: str, verified_only: bool):
    session = get_state().db.session
    visitors = dict(session.execute(
        select(_c.destination_no, func.count(func.distinct(_VISITOR)))
        .where(_c.link_id == link_id, _c.kind == "human", _c.destination_no.is_not(None))
        .group_by(_c.destination_no)
    ).all())
    verified = _v.trust == "verified"
    rows = session.execute(
        select(
            _c.destination_no,
            _v.currency,
            func.count(),
            func.sum(_v.revenue),
            func.sum(case((verified, _v.revenue), else_=None)),
            func.sum(_v.refunded),
        )
        .select_from(Click.__table__.join(Conversion.__table__, _v.click_pk == _c.id))
        .where(_c.link_id == link_id, _c.destination_no.is_not(None))
        .group_by(_c.destination_no, _v.currency)
    ).all()
    conversions: dict[int, int] = defaultdict(int)
    revenue: dict[int, Decimal] = defaultdict(Decimal)
    for number, cur, n, total, verified_total, refunded in rows:
        conversions[number] += n
        if cur == currency:
            revenue[number] += counted_revenue(
                verified_only, Decimal(total or 0), Decimal(verified_total or 0), Decimal(refunded or 0))
    return visitors, conversions, revenue


def destination_test(link: Link) -> Table:
    """The landing-page test of ``link``: a row per destination (in order,
    the first is the baseline), its visitors (unique human visitors sent
    there), conversions attributed to their clicks, conversion rate
    (conversions / visitors), revenue in the campaign's currency and
    revenue per click (revenue / visitors); the notes hold the verdict."""
    campaign = link.campaign
    visitors, conversions, revenue = _counts(link.id, campaign.currency, campaign.verified_revenue_only)
    rows = []
    for d in link.destinations:
        n, k = visitors.get(d.number, 0), conversions[d.number]
        rows.append({
            "number": d.number, "destination": d.label, "url": d.url, "weight": d.weight, "visitors": n,
            "conversions": k, "conversion_rate": ratio(k, n), "revenue": revenue[d.number],
            "revenue_per_click": ratio(revenue[d.number], n),
        })
    notes = []
    if len(rows) >= 2:
        over = [r for r in rows if r["conversions"] > r["visitors"]]
        if over:
            r = over[0]
            notes.append(f"Conversion rate cannot be tested: {r['destination']} has more conversions "
                         f"({r['conversions']}) than visitors ({r['visitors']}).")
        else:
            comparisons = compare_variants(
                "conversion_rate", [(r["destination"], r["conversions"], r["visitors"]) for r in rows])
            for row, c in zip(rows[1:], comparisons):
                row.update(cr_p=c.p_value, cr_beats=c.probability_to_beat)
            notes.append(summary_verdict(comparisons))
    columns = list(COLUMNS)
    if rows:
        columns[7] = Column("cr_beats", f"Chance to beat {rows[0]['destination']}", "rate")
    return Table("destination_test", f"Landing-page test of /{link.code}", columns, rows, notes)
