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
from dataclasses import dataclass, replace

#: The exact Beta sum is used while it has fewer terms than this.
EXACT_TERMS_LIMIT = 2000


@dataclass(frozen=True)
class _Words:
    #: The metric in a sentence: ``"CTR"``, ``"conversion rate"``.
    name: str
    #: A trial / trials, as in "at least 100 delivered messages".
    trial: tuple[str, str]
    #: The same, short, as in "B has 40 delivered".
    trial_short: tuple[str, str]
    #: A success / successes.
    success: tuple[str, str]


_METRICS = {
    "ctr": _Words(
        "CTR",
        ("delivered message", "delivered messages"),
        ("delivered", "delivered"),
        ("click", "clicks"),
    ),
    "conversion_rate": _Words(
        "conversion rate",
        ("unique click", "unique clicks"),
        ("unique click", "unique clicks"),
        ("conversion", "conversions"),
    ),
}


# -- the tests ------------------------------------------------------------------


def _check_counts(successes: int, trials: int) -> tuple[int, int]:
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
    s1, n1 = _check_counts(s1, n1)
    s2, n2 = _check_counts(s2, n2)
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
    s1, n1 = _check_counts(s1, n1)
    s2, n2 = _check_counts(s2, n2)
    if n1 == 0 or n2 == 0:
        return None
    return _beta_beats(1 + s1, 1 + n1 - s1, 1 + s2, 1 + n2 - s2)


# -- comparisons and verdicts -----------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One variant against the baseline on one metric."""

    #: ``"ctr"`` or ``"conversion_rate"``.
    metric: str
    variant: str
    baseline: str
    successes: int
    trials: int
    baseline_successes: int
    baseline_trials: int
    rate: float | None
    baseline_rate: float | None
    #: ``rate / baseline_rate - 1``; ``None`` when the baseline rate is 0 or unknown.
    lift: float | None
    #: Two-sided, from the pooled two-proportion z-test.
    p_value: float | None
    #: P(the variant's true rate > the baseline's).
    probability_to_beat: float | None
    #: Both arms reached ``min_trials`` and ``min_successes``.
    enough_data: bool
    #: One plain-language sentence.
    verdict: str
    #: The significance level the p-value is held to (already corrected).
    threshold: float = 0.05
    #: How many variants are compared with the baseline in the whole test.
    comparisons: int = 1
    min_trials: int = 100
    min_successes: int = 10

    @property
    def significant(self) -> bool:
        """Whether a winner (or loser) may be called."""
        return self.enough_data and self.p_value is not None and self.p_value < self.threshold

    @property
    def outcome(self) -> str:
        """``"better"``, ``"worse"``, ``"no difference"`` or ``"too early"``."""
        if not self.enough_data:
            return "too early"
        if not self.significant or self.rate == self.baseline_rate:
            return "no difference"
        assert self.rate is not None and self.baseline_rate is not None
        return "better" if self.rate > self.baseline_rate else "worse"


def _plural(n: int, forms: tuple[str, str]) -> str:
    return f"{n:,} {forms[0] if n == 1 else forms[1]}"


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _format_p(p: float, threshold: float | None = None) -> str:
    """``p = 0.003``, ``p = 0.41``, ``p < 0.001``. With ``threshold``, digits
    are added until the shown value falls on the same side of it as ``p``."""
    if p < 0.001:
        return "p < 0.001"
    places = 3
    while threshold is not None and places < 8 and (round(p, places) < threshold) != (p < threshold):
        places += 1
    text = f"{p:.{places}f}".rstrip("0")
    return f"p = {text + '0' if text.endswith('.') else text}"


def _format_probability(p: float) -> str:
    if p > 0.999:
        return ">99.9%"
    if p < 0.001:
        return "<0.1%"
    return f"{p * 100:.1f}%"


def _correction_note(threshold: float, comparisons: int) -> str:
    if comparisons <= 1:
        return ""
    return f", Bonferroni-corrected for {comparisons} comparisons: a winner needs p < {threshold:.3g}"


def _requirement(words: _Words, min_trials: int, min_successes: int) -> str:
    need = _plural(min_trials, words.trial)
    if min_successes > 0:
        need += f" and {_plural(min_successes, words.success)}"
    return f"each variant needs at least {need}"


def _shortfall(
    words: _Words, name: str, successes: int, trials: int, min_trials: int, min_successes: int
) -> str:
    """``"B has 40 delivered"``, or ``""`` when the arm has enough data."""
    missing = []
    if trials < min_trials or trials == 0:
        missing.append(_plural(trials, words.trial_short))
    if successes < min_successes:
        missing.append(_plural(successes, words.success))
    return f"{name} has {' and '.join(missing)}" if missing else ""


def _too_early(words: _Words, arms: list[tuple[str, int, int]], min_trials: int, min_successes: int) -> str:
    short = [_shortfall(words, name, s, n, min_trials, min_successes) for name, s, n in arms]
    return (
        f"Too early to call on {words.name}: {_requirement(words, min_trials, min_successes)}; "
        f"{'; '.join(text for text in short if text)}."
    )


def _call(c: Comparison, words: _Words) -> str:
    """The verdict on a significant difference: "B beats A on CTR: ..."."""
    assert c.p_value is not None and c.probability_to_beat is not None
    better = c.outcome == "better"
    chance = c.probability_to_beat if better else 1.0 - c.probability_to_beat
    claim = f"{c.variant} beats {c.baseline}" if better else f"{c.variant} does worse than {c.baseline}"
    return (
        f"{claim} on {words.name}: {_percent(c.rate)} vs {_percent(c.baseline_rate)} "
        f"({_format_p(c.p_value, c.threshold)}, {_format_probability(chance)} probability to be "
        f"{'better' if better else 'worse'}{_correction_note(c.threshold, c.comparisons)})."
    )


def _no_winner(
    words: _Words, baseline: str, variants: list[str], p: float, threshold: float, comparisons: int
) -> str:
    if len(variants) == 1:
        what = f"the difference between {baseline} and {variants[0]} is"
        shown = _format_p(p, threshold)
    else:
        others = ", ".join(variants[:-1]) + f" and {variants[-1]}"
        what = f"the differences between {baseline} and each of {others} are"
        shown = "lowest " + _format_p(p, threshold)
    return (
        f"No winner yet on {words.name}: {what} within what chance produces "
        f"({shown}{_correction_note(threshold, comparisons)})."
    )


def _words(metric: str) -> _Words:
    try:
        return _METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}: use 'ctr' or 'conversion_rate'") from None


def compare(
    metric: str,
    variant: str,
    successes: int,
    trials: int,
    baseline: str,
    baseline_successes: int,
    baseline_trials: int,
    *,
    alpha: float = 0.05,
    min_trials: int = 100,
    min_successes: int = 10,
    comparisons: int = 1,
) -> Comparison:
    """Compare ``variant`` with ``baseline`` on ``metric`` (``"ctr"``:
    unique clicks / delivered; ``"conversion_rate"``: conversions / unique
    clicks).

    ``alpha`` is the significance level of the whole test; ``comparisons``
    is how many variants the test compares with the baseline, and the
    p-value must be below ``alpha / comparisons`` (Bonferroni). No winner is
    called while either arm has fewer than ``min_trials`` trials or
    ``min_successes`` successes, however small the p-value.
    """
    words = _words(metric)
    s, n = _check_counts(successes, trials)
    bs, bn = _check_counts(baseline_successes, baseline_trials)
    if comparisons < 1:
        raise ValueError("comparisons must be at least 1")
    rate = s / n if n else None
    baseline_rate = bs / bn if bn else None
    lift = rate / baseline_rate - 1.0 if rate is not None and baseline_rate else None
    test = two_proportion_test(s, n, bs, bn)
    enough = n > 0 and bn > 0 and min(n, bn) >= min_trials and min(s, bs) >= min_successes
    c = Comparison(
        metric=metric,
        variant=variant,
        baseline=baseline,
        successes=s,
        trials=n,
        baseline_successes=bs,
        baseline_trials=bn,
        rate=rate,
        baseline_rate=baseline_rate,
        lift=lift,
        p_value=None if test is None else test[1],
        probability_to_beat=probability_to_beat(s, n, bs, bn),
        enough_data=enough,
        verdict="",
        threshold=alpha / comparisons,
        comparisons=comparisons,
        min_trials=min_trials,
        min_successes=min_successes,
    )
    return _with_verdict(c, words)


def _with_verdict(c: Comparison, words: _Words) -> Comparison:
    if not c.enough_data:
        arms = [(c.baseline, c.baseline_successes, c.baseline_trials), (c.variant, c.successes, c.trials)]
        verdict = _too_early(words, arms, c.min_trials, c.min_successes)
    elif c.outcome == "no difference":
        assert c.p_value is not None
        verdict = _no_winner(words, c.baseline, [c.variant], c.p_value, c.threshold, c.comparisons)
    else:
        verdict = _call(c, words)
    return replace(c, verdict=verdict)


def compare_variants(
    metric: str,
    rows: list[tuple[str, int, int]],
    *,
    alpha: float = 0.05,
    min_trials: int = 100,
    min_successes: int = 10,
) -> list[Comparison]:
    """Compare every variant with the baseline.

    ``rows`` are ``(variant, successes, trials)`` in display order; the first
    is the baseline. With more than one comparison the significance level is
    Bonferroni-corrected to ``alpha / (len(rows) - 1)``.
    """
    names = [row[0] for row in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    if len(rows) < 2:
        return []
    (baseline, bs, bn), *others = rows
    return [
        compare(
            metric,
            name,
            s,
            n,
            baseline,
            bs,
            bn,
            alpha=alpha,
            min_trials=min_trials,
            min_successes=min_successes,
            comparisons=len(others),
        )
        for name, s, n in others
    ]


def summary_verdict(comparisons: list[Comparison]) -> str:
    """One sentence for the whole test, from :func:`compare_variants`.

    Too early while any variant lacks data; otherwise the best significant
    winner, else the worst significant loser, else "no winner yet".
    """
    if not comparisons:
        return "Nothing to compare yet: a test needs a baseline and at least one other variant."
    first = comparisons[0]
    if any(c.metric != first.metric or c.baseline != first.baseline for c in comparisons):
        raise ValueError("all comparisons must share one metric and one baseline")
    words = _words(first.metric)
    if not all(c.enough_data for c in comparisons):
        arms = [(first.baseline, first.baseline_successes, first.baseline_trials)]
        arms += [(c.variant, c.successes, c.trials) for c in comparisons]
        return _too_early(words, arms, first.min_trials, first.min_successes)
    for outcome, also in (
        ("better", ("also beats", "also beat")),
        ("worse", ("also does worse than", "also do worse than")),
    ):
        called = [c for c in comparisons if c.outcome == outcome]
        if called:
            called.sort(key=lambda c: c.rate or 0.0, reverse=outcome == "better")
            text = _call(called[0], words)
            if len(called) > 1:
                rest = [c.variant for c in called[1:]]
                verb = also[0] if len(rest) == 1 else also[1]
                text = f"{text[:-1]}; {', '.join(rest)} {verb} {first.baseline}."
            return text
    p = min(c.p_value for c in comparisons if c.p_value is not None)
    return _no_winner(
        words, first.baseline, [c.variant for c in comparisons], p, first.threshold, first.comparisons
    )
