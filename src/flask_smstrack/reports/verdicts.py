"""The sentences of an A/B test: comparisons of each variant with the baseline and their verdicts."""
from __future__ import annotations

from dataclasses import dataclass, replace

from .stats import check_counts, probability_to_beat, two_proportion_test


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
    s, n = check_counts(successes, trials)
    bs, bn = check_counts(baseline_successes, baseline_trials)
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
