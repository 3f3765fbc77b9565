"""Random draws for the demos: weighted picks, delay distributions, carrier
IP addresses and microsecond timestamps."""
from __future__ import annotations

import datetime as dt
import math
import random
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from ..tracking.classify import anonymize_ip


def carrier_ip(rng: random.Random, prefixes: tuple[str, ...]) -> str | None:
    """An anonymized address in one of a carrier's networks."""
    prefix = prefixes[rng.randrange(len(prefixes))]
    if ":" in prefix:
        ip = f"{prefix}:{rng.randrange(65536):x}:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    elif prefix.count(".") == 2:
        ip = f"{prefix}.{rng.randrange(1, 255)}"
    else:
        ip = f"{prefix}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return anonymize_ip(ip)


def lognormal_cdf(median_s: float, sigma: float) -> Callable[[float], float]:
    mu, scale = math.log(median_s), sigma * math.sqrt(2)
    return lambda t: 0.5 * (1 + math.erf((math.log(t) - mu) / scale)) if t > 0 else 0.0


def exponential_cdf(mean_s: float) -> Callable[[float], float]:
    return lambda t: 1 - math.exp(-t / mean_s) if t > 0 else 0.0


def mixture(*parts: tuple[float, Callable[[float], float]]) -> Callable[[float], float]:
    return lambda t: sum(w * cdf(t) for w, cdf in parts)


def bucket_edges(horizon_s: float) -> list[float]:
    """Time buckets after the send: 1 s wide for 10 minutes, 10 s until
    3 hours, then 1 minute."""
    edges = [float(s) for s in range(1, 600)]
    edges += [float(s) for s in range(600, 10_800, 10)]
    edges += [float(s) for s in range(10_800, int(horizon_s), 60)]
    edges.append(horizon_s)
    return edges


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def micros(moment: dt.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=micros)


def weighted(pairs) -> tuple[list[Any], list[float]]:
    items, weights = zip(*pairs)
    return list(items), list(accumulate(weights))


def pick(rng: random.Random, items: list[Any], cum: list[float]) -> Any:
    return items[bisect_right(cum, rng.random() * cum[-1])]
