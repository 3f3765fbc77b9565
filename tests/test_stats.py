"""A/B/n statistics: numbers worked out by hand, properties, and the verdicts
a user reads."""
import math
import random
import re
from statistics import NormalDist

import pytest

from flask_smstrack.reports.stats import (
    EXACT_TERMS_LIMIT,
    _beta_exact,
    _beta_normal,
    probability_to_beat,
    two_proportion_test,
    wilson_interval,
)
from flask_smstrack.reports.verdicts import (
    _format_p,
    compare,
    compare_variants,
    summary_verdict,
)

# -- the z-test ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "s1,n1,s2,n2,z,p",
    [
        # pooled = 450 / 2000 = 0.225
        # SE = sqrt(0.225 * 0.775 * (1/1000 + 1/1000)) = sqrt(0.00034875) = 0.0186748
        # z = (0.20 - 0.25) / 0.0186748 = -2.6774
        # Normal table: Q(2.67) = 0.003793, Q(2.68) = 0.003681, so Q(2.6774) = 0.003710
        # and the two-sided p = 0.00742 (0.0074 rounded; 0.0073 if z is first rounded to 2.68).
        (200, 1000, 250, 1000, -2.6774, 0.00742),
        # pooled = 101 / 200 = 0.505
        # SE = sqrt(0.505 * 0.495 * (1/100 + 1/100)) = sqrt(0.0049995) = 0.0707071
        # z = (0.45 - 0.56) / 0.0707071 = -1.5557
        # Phi(1.55) = 0.93943, Phi(1.56) = 0.94062: Phi(1.5557) = 0.94011, p = 2 * 0.05989 = 0.1198.
        (45, 100, 56, 100, -1.5557, 0.1198),
        # Unequal sizes. pooled = 90 / 1500 = 0.06
        # SE = sqrt(0.06 * 0.94 * (1/1000 + 1/500)) = sqrt(0.0001692) = 0.0130077
        # z = (0.07 - 0.04) / 0.0130077 = 2.3063
        # Phi(2.30) = 0.98928, Phi(2.31) = 0.98956: Phi(2.3063) = 0.98946, p = 2 * 0.01054 = 0.0211.
        (70, 1000, 20, 500, 2.3063, 0.0211),
    ],
)
def test_z_test_known_values(s1, n1, s2, n2, z, p):
    got_z, got_p = two_proportion_test(s1, n1, s2, n2)
    assert got_z == pytest.approx(z, abs=5e-4)
    assert got_p == pytest.approx(p, rel=2e-3)


@pytest.mark.parametrize(
    "s1,n1,s2,n2",
    [(200, 1000, 250, 1000), (45, 100, 56, 100), (70, 1000, 20, 500), (3, 4000, 17, 3900)],
)
def test_z_squared_is_the_chi_square_of_the_table(s1, n1, s2, n2):
    """An independent route: the pooled z-test is the 2x2 chi-square test
    without continuity correction, and its p is the normal tail of |z|."""
    observed = [[s1, n1 - s1], [s2, n2 - s2]]
    total = n1 + n2
    columns = [s1 + s2, total - s1 - s2]
    chi2 = sum(
        (observed[r][c] - [n1, n2][r] * columns[c] / total) ** 2 / ([n1, n2][r] * columns[c] / total)
        for r in range(2)
        for c in range(2)
    )
    z, p = two_proportion_test(s1, n1, s2, n2)
    assert z * z == pytest.approx(chi2, rel=1e-9)
    assert p == pytest.approx(2 * (1 - NormalDist().cdf(abs(z))), rel=1e-6)


@pytest.mark.parametrize("s1,n1,s2,n2", [(200, 1000, 250, 1000), (7, 90, 30, 120), (0, 10, 10, 10)])
def test_z_test_symmetry(s1, n1, s2, n2):
    z, p = two_proportion_test(s1, n1, s2, n2)
    z_swapped, p_swapped = two_proportion_test(s2, n2, s1, n1)
    assert z_swapped == pytest.approx(-z)
    assert p_swapped == pytest.approx(p)


@pytest.mark.parametrize(
    "args,expected",
    [
        ((0, 0, 5, 100), None),
        ((5, 100, 0, 0), None),
        ((0, 0, 0, 0), None),
        ((0, 100, 0, 250), (0.0, 1.0)),  # no successes anywhere
        ((100, 100, 250, 250), (0.0, 1.0)),  # nothing but successes
    ],
)
def test_z_test_edges(args, expected):
    assert two_proportion_test(*args) == expected


@pytest.mark.parametrize("args", [(11, 10, 1, 10), (-1, 10, 1, 10), (1, 10, 1, -10)])
def test_impossible_counts_are_refused(args):
    with pytest.raises(ValueError):
        two_proportion_test(*args)
    with pytest.raises(ValueError):
        probability_to_beat(*args)


# -- probability to beat ------------------------------------------------------------


def test_probability_closed_forms():
    # 1/1 vs 0/1: X ~ Beta(2, 1) (density 2x), Y ~ Beta(1, 2) (density 2(1 - y)).
    # P(X > Y) = int 2(1 - y)(1 - y^2) dy = 2 (1 - 1/2 - 1/3 + 1/4) = 5/6.
    assert probability_to_beat(1, 1, 0, 1) == pytest.approx(5 / 6, abs=1e-12)
    # 2/2 vs 0/2: X ~ Beta(3, 1) (CDF x^3), Y ~ Beta(1, 3) (density 3(1 - y)^2).
    # P(X > Y) = int 3(1 - y)^2 (1 - y^3) dy = 1 - 3 B(4, 3) = 1 - 3/60 = 19/20.
    assert probability_to_beat(2, 2, 0, 2) == pytest.approx(19 / 20, abs=1e-12)
    assert probability_to_beat(0, 2, 2, 2) == pytest.approx(1 / 20, abs=1e-12)


@pytest.mark.parametrize(
    "s,n", [(0, 1), (1, 1), (5, 100), (40, 1000), (990, 1000), (3000, 60000), (5, 10**7)]
)
def test_identical_data_is_a_coin_flip(s, n):
    assert probability_to_beat(s, n, s, n) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize(
    "s1,n1,s2,n2",
    [
        (8, 500, 12, 500),
        (492, 500, 488, 500),
        (40, 1000, 55, 1000),
        (1500, 40000, 1600, 41000),
        (2500, 40000, 2600, 41000),  # the normal approximation
        (5, 10**7, 3, 10**7),  # huge counts: log space, no overflow
    ],
)
def test_probability_complement(s1, n1, s2, n2):
    p = probability_to_beat(s1, n1, s2, n2)
    assert 0.0 <= p <= 1.0
    assert p + probability_to_beat(s2, n2, s1, n1) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("a1,b1,a2,b2", [(9, 492, 13, 489), (41, 960, 56, 946), (300, 700, 320, 650)])
def test_every_summation_order_agrees(a1, b1, a2, b2):
    """The sum may run over any of the four parameters (swap the arms,
    mirror the Betas): all four give the same probability."""
    direct = _beta_exact(a1, b1, a2, b2)
    assert _beta_exact(b2, a2, b1, a1) == pytest.approx(direct, abs=1e-10)
    assert 1 - _beta_exact(a2, b2, a1, b1) == pytest.approx(direct, abs=1e-10)
    assert 1 - _beta_exact(b1, a1, b2, a2) == pytest.approx(direct, abs=1e-10)


@pytest.mark.parametrize(
    "s1,n1,s2,n2",
    [
        (8, 500, 12, 500),  # sums over the variant's successes
        (492, 500, 488, 500),  # over the baseline's failures
        (55, 1000, 40, 1000),  # the complement, over the baseline's successes
    ],
)
def test_probability_matches_monte_carlo(s1, n1, s2, n2):
    rng = random.Random(20260303)
    draws = 200_000
    wins = sum(
        rng.betavariate(1 + s1, 1 + n1 - s1) > rng.betavariate(1 + s2, 1 + n2 - s2) for _ in range(draws)
    )
    assert probability_to_beat(s1, n1, s2, n2) == pytest.approx(wins / draws, abs=0.01)


def test_exact_and_normal_agree_on_a_large_case():
    # 1,900 / 40,000 vs 2,000 / 40,000: under the exact limit, large enough for the normal.
    args = (1 + 1900, 1 + 38100, 1 + 2000, 1 + 38000)
    assert min(args) < EXACT_TERMS_LIMIT
    exact, normal = _beta_exact(*args), _beta_normal(*args)
    assert 0.03 < exact < 0.97
    assert exact == pytest.approx(normal, abs=0.005)


def test_probability_is_monotonic_in_successes():
    small = [probability_to_beat(s, 1000, 50, 1000) for s in range(0, 120)]
    assert all(a < b for a, b in zip(small, small[1:]))
    # Across the switch from the exact sum to the normal approximation.
    large = [probability_to_beat(s, 40000, 2050, 40000) for s in range(1940, 2060)]
    assert all(a < b for a, b in zip(large, large[1:]))


def test_probability_without_trials_is_unknown():
    assert probability_to_beat(0, 0, 5, 100) is None
    assert probability_to_beat(5, 100, 0, 0) is None


# -- compare ------------------------------------------------------------------------


def test_compare_fields():
    c = compare("ctr", "B", 61, 1000, "A", 40, 1000)
    assert (c.metric, c.variant, c.baseline) == ("ctr", "B", "A")
    assert (c.successes, c.trials, c.baseline_successes, c.baseline_trials) == (61, 1000, 40, 1000)
    assert c.rate == pytest.approx(0.061)
    assert c.baseline_rate == pytest.approx(0.040)
    assert c.lift == pytest.approx(0.525)
    assert c.p_value == pytest.approx(two_proportion_test(61, 1000, 40, 1000)[1])
    assert c.probability_to_beat == pytest.approx(probability_to_beat(61, 1000, 40, 1000))
    assert c.enough_data


def test_zero_trials():
    c = compare("conversion_rate", "B", 0, 0, "A", 0, 0)
    assert c.rate is c.baseline_rate is c.lift is c.p_value is c.probability_to_beat is None
    assert not c.enough_data
    assert c.verdict == (
        "Too early to call on conversion rate: each variant needs at least 100 unique clicks "
        "and 10 conversions; A has 0 unique clicks and 0 conversions; "
        "B has 0 unique clicks and 0 conversions."
    )


def test_no_successes_in_either_arm():
    c = compare("ctr", "B", 0, 5000, "A", 0, 5000, min_successes=0)
    assert (c.rate, c.baseline_rate, c.lift, c.p_value) == (0.0, 0.0, None, 1.0)
    assert c.probability_to_beat == pytest.approx(0.5)
    assert c.verdict == (
        "No winner yet on CTR: the difference between A and B is within what chance produces (p = 1.0)."
    )


def test_nothing_but_successes():
    c = compare("conversion_rate", "B", 300, 300, "A", 200, 200)
    assert (c.rate, c.baseline_rate, c.lift, c.p_value) == (1.0, 1.0, 0.0, 1.0)
    assert c.probability_to_beat > 0.5  # more evidence for a rate near 1
    assert c.verdict.startswith("No winner yet on conversion rate")


@pytest.mark.parametrize(
    "s,n,bs,bn,short",
    [
        (25, 50, 0, 50, "A has 50 delivered and 0 clicks; B has 50 delivered"),
        (9, 1000, 60, 1000, "B has 9 clicks"),
        (60, 1000, 9, 1000, "A has 9 clicks"),
        (40, 99, 4, 5000, "A has 4 clicks; B has 99 delivered"),
    ],
)
def test_refuses_to_call_on_small_samples(s, n, bs, bn, short):
    c = compare("ctr", "B", s, n, "A", bs, bn)
    assert c.p_value < 0.001  # the z-test alone would call it
    assert not c.enough_data
    assert c.outcome == "too early"
    assert c.verdict == (
        "Too early to call on CTR: each variant needs at least 100 delivered messages and 10 clicks; "
        f"{short}."
    )


def test_the_too_early_example():
    c = compare("ctr", "B", 12, 40, "A", 10, 100)
    assert c.verdict == (
        "Too early to call on CTR: each variant needs at least 100 delivered messages and 10 clicks; "
        "B has 40 delivered."
    )


@pytest.mark.parametrize("alpha", [0.01, 0.02, 0.04])
def test_no_winner_at_or_above_alpha(alpha):
    c = compare("ctr", "B", 130, 2000, "A", 100, 2000, alpha=alpha)  # p = 0.0416
    assert c.p_value >= alpha
    assert c.outcome == "no difference"
    assert "beats" not in c.verdict and "worse" not in c.verdict
    assert c.verdict == (
        "No winner yet on CTR: the difference between A and B is within what chance produces (p = 0.042)."
    )


def test_winner():
    c = compare("ctr", "B", 122, 2000, "A", 80, 2000)  # p = 0.0024, P(B > A) = 0.9988
    assert c.outcome == "better"
    assert c.verdict == "B beats A on CTR: 6.1% vs 4.0% (p = 0.002, 99.9% probability to be better)."


def test_loser():
    c = compare("conversion_rate", "B", 60, 2000, "A", 100, 2000)  # p = 0.0012, P(B > A) = 0.0006
    assert c.outcome == "worse"
    assert c.verdict == (
        "B does worse than A on conversion rate: 3.0% vs 5.0% (p = 0.001, >99.9% probability to be worse)."
    )


def test_unknown_metric():
    with pytest.raises(ValueError, match="conversion_rate"):
        compare("roi", "B", 1, 10, "A", 1, 10)


# -- compare_variants and the summary -----------------------------------------------


def test_compare_variants_uses_the_first_row_as_baseline():
    rows = [("A", 100, 2000), ("B", 160, 2000), ("C", 150, 2000)]
    comparisons = compare_variants("ctr", rows)
    assert [(c.baseline, c.variant) for c in comparisons] == [("A", "B"), ("A", "C")]
    assert all(c.threshold == pytest.approx(0.025) and c.comparisons == 2 for c in comparisons)
    assert compare_variants("ctr", rows[:1]) == []
    assert compare_variants("ctr", []) == []
    with pytest.raises(ValueError):
        compare_variants("ctr", [("A", 1, 10), ("A", 2, 10)])


def test_bonferroni_changes_a_borderline_call():
    """p = 0.0416 for B: a winner against A alone (alpha = 0.05), not once a
    third variant halves the threshold to 0.025."""
    two = compare_variants("ctr", [("A", 100, 2000), ("B", 130, 2000)])
    assert summary_verdict(two) == (
        "B beats A on CTR: 6.5% vs 5.0% (p = 0.042, 97.9% probability to be better)."
    )

    three = compare_variants("ctr", [("A", 100, 2000), ("B", 130, 2000), ("C", 100, 2000)])
    assert three[0].p_value == two[0].p_value
    assert three[0].outcome == "no difference"
    assert summary_verdict(three) == (
        "No winner yet on CTR: the differences between A and each of B and C are within what chance "
        "produces (lowest p = 0.042, Bonferroni-corrected for 2 comparisons: a winner needs p < 0.025)."
    )


def test_summary_with_two_winners_names_the_best():
    comparisons = compare_variants("ctr", [("A", 100, 2000), ("C", 150, 2000), ("B", 160, 2000)])
    assert summary_verdict(comparisons) == (
        "B beats A on CTR: 8.0% vs 5.0% (p < 0.001, >99.9% probability to be better, "
        "Bonferroni-corrected for 2 comparisons: a winner needs p < 0.025); C also beats A."
    )


def test_summary_with_losers_only():
    comparisons = compare_variants(
        "conversion_rate", [("A", 100, 2000), ("B", 60, 2000), ("C", 50, 2000), ("D", 100, 2000)]
    )
    assert summary_verdict(comparisons) == (
        "C does worse than A on conversion rate: 2.5% vs 5.0% (p < 0.001, >99.9% probability to be worse, "
        "Bonferroni-corrected for 3 comparisons: a winner needs p < 0.0167); B also does worse than A."
    )


def test_summary_is_too_early_while_any_variant_is_short():
    comparisons = compare_variants("ctr", [("A", 100, 2000), ("B", 160, 2000), ("C", 12, 40)])
    assert comparisons[0].outcome == "better"
    assert summary_verdict(comparisons) == (
        "Too early to call on CTR: each variant needs at least 100 delivered messages and 10 clicks; "
        "C has 40 delivered."
    )


def test_summary_of_nothing():
    assert summary_verdict([]).startswith("Nothing to compare yet")


@pytest.mark.parametrize(
    "metric,name,trials,successes",
    [
        ("ctr", "CTR", "delivered messages", "clicks"),
        ("conversion_rate", "conversion rate", "unique clicks", "conversions"),
    ],
)
def test_wording(metric, name, trials, successes):
    early = summary_verdict(compare_variants(metric, [("A", 1, 10), ("B", 2, 10)]))
    assert f"on {name}:" in early
    assert f"at least 100 {trials} and 10 {successes}" in early
    called = summary_verdict(compare_variants(metric, [("A", 400, 10000), ("B", 610, 10000)]))
    assert called.startswith(f"B beats A on {name}: 6.1% vs 4.0% (p < 0.001")
    assert all(re.fullmatch(r"\d+\.\d%", pct) for pct in re.findall(r"[\d.]+%", called))


def test_singular_requirements():
    c = compare("conversion_rate", "B", 0, 1, "A", 1, 1, min_trials=1, min_successes=1)
    assert c.verdict == (
        "Too early to call on conversion rate: each variant needs at least 1 unique click and 1 conversion; "
        "B has 0 conversions."
    )


@pytest.mark.parametrize(
    "p,threshold,text",
    [
        (0.0004, None, "p < 0.001"),
        (0.003, None, "p = 0.003"),
        (0.00742, None, "p = 0.007"),
        (0.41, None, "p = 0.41"),
        (1.0, None, "p = 1.0"),
        # Never "p = 0.05" next to a winner at alpha = 0.05.
        (0.04996, 0.05, "p = 0.04996"),
        (0.0500, 0.05, "p = 0.05"),
    ],
)
def test_p_value_format(p, threshold, text):
    assert _format_p(p, threshold) == text


def test_float_sanity():
    # Huge counts stay finite and in range on both paths.
    for args in [(10**6, 10**8, 10**6 + 5000, 10**8), (3, 10**9, 5, 10**9)]:
        p = probability_to_beat(*args)
        assert math.isfinite(p) and 0.0 <= p <= 1.0


@pytest.mark.parametrize("s,n,low,high", [
    (0, 10, 0.0, 0.2775),  # published values (Newcombe 1998, Brown, Cai and DasGupta 2001)
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),
])
def test_wilson_interval(s, n, low, high):
    got = wilson_interval(s, n)
    assert got == pytest.approx((low, high), abs=1e-4)
    assert got[0] <= s / n <= got[1]


def test_wilson_interval_without_trials_and_bad_counts():
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
