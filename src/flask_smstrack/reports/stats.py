"""Is one message variant really better than another? The statistics of an
A/B/n SMS test.

Two rates are compared, each as successes over trials:

- **CTR**: unique clicks over delivered messages;
- **conversion rate**: conversions over unique clicks.

The first variant of a test is the baseline (the control); every other
variant is compared with it in two ways:

- a two-sided two-proportion z-test with the pooled standard error, giving
  the p-value a winner must beat;
- the probability that the variant's true rate is higher than the
  baseline's, under independent ``Beta(1 + s, 1 + n - s)`` posteriors
  (a uniform prior). It is computed exactly with Evan Miller's closed form
  for Betas with integer parameters when that sum is short, and from a
  normal approximation of the two posteriors otherwise.

A winner is called only when every variant has enough data and the p-value
is below ``alpha``, divided by the number of comparisons when there are more
than two variants (the Bonferroni correction). Pure Python: the inputs are
exact counts, the arithmetic is :mod:`math`.
"""
from __future__ import annotations

import math
import operator

#: The exact Beta sum is used while it has fewer terms than this.
EXACT_TERMS_LIMIT = 2000


def check_counts(successes: int, trials: int) -> tuple[int, int]:
    s, n = operator.index(successes), operator.index(trials)
    if n < 0 or s < 0 or s > n:
        raise ValueError(f"need 0 <= successes <= trials, got {s} successes of {n} trials")
    return s, n


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def two_proportion_test(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float] | None:
    """The two-proportion z-test of ``s1 / n1`` against ``s2 / n2`` with the
    pooled standard error.

    Returns ``(z, p)``: ``z`` is positive when the first rate is higher, ``p``
    is two-sided. ``None`` when a trial count is 0. When the pooled rate is 0
    or 1 (no successes at all, or nothing but successes) both samples have
    the same outcome and the answer is ``(0.0, 1.0)``.
    """
    s1, n1 = check_counts(s1, n1)
    s2, n2 = check_counts(s2, n2)
    if n1 == 0 or n2 == 0:
        return None
    pooled = (s1 + s2) / (n1 + n2)
    if s1 + s2 == 0 or s1 + s2 == n1 + n2:
        return 0.0, 1.0
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = (s1 / n1 - s2 / n2) / se
    return z, math.erfc(abs(z) / math.sqrt(2.0))


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _beta_exact(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X1 > X2) for independent X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), integer
    parameters, as a sum of ``a1`` terms (Evan Miller, "Formulas for Bayesian
    A/B testing")::

        sum(i = 0 .. a1 - 1) B(a2 + i, b1 + b2) / ((b1 + i) B(1 + i, b1) B(a2, b2))

    Each term is computed in log space, so large counts do not overflow.
    """
    base = _lbeta(a2, b2)
    return math.fsum(
        math.exp(_lbeta(a2 + i, b1 + b2) - math.log(b1 + i) - _lbeta(1 + i, b1) - base)
        for i in range(a1)
    )


def _beta_normal(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X1 > X2) with each Beta replaced by the normal of the same mean and
    variance: good once every parameter is large."""

    def moments(a: int, b: int) -> tuple[float, float]:
        total = a + b
        return a / total, a * b / (total * total * (total + 1))

    m1, v1 = moments(a1, b1)
    m2, v2 = moments(a2, b2)
    return _normal_cdf((m1 - m2) / math.sqrt(v1 + v2))


def _beta_beats(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X1 > X2), exactly when some parameter is small enough, else normal.

    Miller's sum runs over the first alpha. Swapping the arms (and taking the
    complement) or mirroring both Betas (``X -> 1 - X`` swaps alpha and beta)
    lets it run over any of the four parameters: the smallest is used.
    """
    ways = [
        (a1, False, (a1, b1, a2, b2)),  # P(X1 > X2)
        (b2, False, (b2, a2, b1, a1)),  # P(1 - X2 > 1 - X1)
        (a2, True, (a2, b2, a1, b1)),  # 1 - P(X2 > X1)
        (b1, True, (b1, a1, b2, a2)),  # 1 - P(1 - X1 > 1 - X2)
    ]
    terms, complement, args = min(ways, key=lambda way: (way[0], way[1]))
    if terms >= EXACT_TERMS_LIMIT:
        return _beta_normal(a1, b1, a2, b2)
    p = _beta_exact(*args)
    return min(1.0, max(0.0, 1.0 - p if complement else p))


def probability_to_beat(s1: int, n1: int, s2: int, n2: int) -> float | None:
    """The probability that the true rate behind ``s1 / n1`` is higher than
    the one behind ``s2 / n2``, each under a ``Beta(1 + s, 1 + n - s)``
    posterior. ``None`` when a trial count is 0."""
    s1, n1 = check_counts(s1, n1)
    s2, n2 = check_counts(s2, n2)
    if n1 == 0 or n2 == 0:
        return None
    return _beta_beats(1 + s1, 1 + n1 - s1, 1 + s2, 1 + n2 - s2)


#: The normal quantile of a two-sided 95% interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / trials`` (95% by default):
    unlike the normal one it stays inside [0, 1] and is honest about small
    samples and rates near 0. ``None`` when ``trials`` is 0."""
    s, n = check_counts(successes, trials)
    if n == 0:
        return None
    p = s / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0 and at n the bound is exactly 0 or 1 (rounding would miss it).
    return (0.0 if s == 0 else max(0.0, centre - half)), (1.0 if s == n else min(1.0, centre + half))
