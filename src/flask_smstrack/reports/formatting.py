"""How numbers look on screen (the API and CSV keep fractions and decimals)."""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def percent(value: Decimal | None, places: int = 1) -> str:
    """``Decimal('0.1234')`` -> ``'12.3%'``; ``None`` -> an en dash. A rate
    that is not zero never shows as zero: 1 in 2,000 -> ``'< 0.1%'``."""
    if value is None:
        return "–"
    q = Decimal(1).scaleb(-places)
    exact = Decimal(value) * 100
    shown = exact.quantize(q, rounding=ROUND_HALF_EVEN)
    if shown == 0 and exact != 0:
        return f"< {q}%" if exact > 0 else f"> -{q}%"
    return f"{shown:,}%"


def money(value: Decimal | None, currency: str | None = None) -> str:
    """``Decimal('1234.5')`` -> ``'1,234.50 USD'``; ``None`` -> an en dash."""
    if value is None:
        return "–"
    amount = f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"
    return f"{amount} {currency}" if currency else amount


def price(value: Decimal | None) -> str:
    """A unit price to the 4 places money is kept to: ``Decimal('0.0079')``
    -> ``'0.0079'``, ``Decimal('0.1')`` -> ``'0.10'``; ``None`` -> an en dash."""
    from ..schemas import format_money

    if value is None:
        return "–"
    return format_money(Decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def count(value: int | None) -> str:
    """``1234`` -> ``'1,234'``; ``None`` -> an en dash."""
    return "–" if value is None else f"{value:,}"


def plural(value: int | None, word: str, words: str | None = None) -> str:
    """A count and its noun: ``(1, 'click')`` -> ``'1 click'``, ``(1234,
    'click')`` -> ``'1,234 clicks'``; ``words`` when the plural is not
    ``word + 's'``; ``None`` -> an en dash."""
    if value is None:
        return "–"
    return f"{value:,} {word if value == 1 else (words or word + 's')}"


def multiple(value: Decimal | None) -> str:
    """``Decimal('5')`` -> ``'5.00×'`` (ROAS: revenue per unit of cost)."""
    if value is None:
        return "–"
    return f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}×"


def p_value(value: float | None) -> str:
    """A test's p-value: ``0.0312`` -> ``'0.031'``, tiny ones ``'< 0.001'``."""
    if value is None:
        return "–"
    if value < 0.001:
        return "< 0.001"
    return f"{value:.3f}"


def chance(value: float | Decimal | None) -> str:
    """A probability as a percentage that never rounds to a certainty:
    ``0.9996`` -> ``'> 99.9%'``, ``0.0004`` -> ``'< 0.1%'``."""
    if value is None:
        return "–"
    if value > 0.999:
        return "> 99.9%"
    if value < 0.001:
        return "< 0.1%"
    return percent(Decimal(str(value)))


FILTERS = {
    "smstrack_percent": percent,
    "smstrack_money": money,
    "smstrack_price": price,
    "smstrack_count": count,
    "smstrack_plural": plural,
    "smstrack_multiple": multiple,
    "smstrack_p_value": p_value,
    "smstrack_chance": chance,
}
