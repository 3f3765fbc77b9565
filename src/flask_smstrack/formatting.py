"""How numbers look on screen (the API and CSV keep fractions and decimals)."""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def percent(value: Decimal | None, places: int = 1) -> str:
    """``Decimal('0.1234')`` -> ``'12.3%'``; ``None`` -> an en dash."""
    if value is None:
        return "–"
    q = Decimal(1).scaleb(-places)
    return f"{(Decimal(value) * 100).quantize(q, rounding=ROUND_HALF_EVEN):,}%"


def money(value: Decimal | None, currency: str | None = None) -> str:
    """``Decimal('1234.5')`` -> ``'1,234.50 USD'``; ``None`` -> an en dash."""
    if value is None:
        return "–"
    amount = f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"
    return f"{amount} {currency}" if currency else amount


def count(value: int | None) -> str:
    """``1234`` -> ``'1,234'``; ``None`` -> an en dash."""
    return "–" if value is None else f"{value:,}"


def multiple(value: Decimal | None) -> str:
    """``Decimal('5')`` -> ``'5.00×'`` (ROAS: revenue per unit of cost)."""
    if value is None:
        return "–"
    return f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}×"


FILTERS = {
    "smstrack_percent": percent,
    "smstrack_money": money,
    "smstrack_count": count,
    "smstrack_multiple": multiple,
}
