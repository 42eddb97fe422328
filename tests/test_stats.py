"""Confidence intervals and paired tests, on cases with known answers."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from snnlib.analysis import stats


def test_wilson_known_values():
    # textbook values (Newcombe 1998, method 3): 81/263 -> 0.2553-0.3662
    low, high = stats.wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    # all wrong or all right: the interval touches 0 or 1 but is not empty
    assert stats.wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert stats.wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)


def test_wilson_agrees_with_scipy():
    # scipy's binomtest gives the same Wilson interval (method "wilson")
    for k, n in [(966, 1000), (5, 200), (199, 200), (500, 1000)]:
        ours = stats.wilson_interval(k, n)
        ref = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert ours == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_accuracy_interval_and_text():
    correct = np.array([True] * 966 + [False] * 34)
    acc = stats.accuracy_interval(correct)
    assert acc.value == 0.966 and acc.n == 1000 and acc.correct == 966
    assert acc.low < 0.966 < acc.high and acc.contains(0.96) and not acc.contains(0.99)
    assert str(acc) == "96.6 % (95 % CI 95.3-97.6, n = 1000)"


def test_mcnemar_exact_known_values():
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(10, 0) == pytest.approx(2 / 2 ** 10)
    assert stats.mcnemar_exact(1, 2) == 1.0
    # agrees with scipy's exact two-sided binomial test on the discordant images
    for a, b in [(7, 20), (30, 12), (3, 9), (15, 15)]:
        assert stats.mcnemar_exact(a, b) == pytest.approx(scipy_stats.binomtest(a, a + b).pvalue)
    # more than 1,023 discordant images (2 ** m overflowed a float in the former formula)
    assert stats.mcnemar_exact(600, 600) == 1.0
    assert 0 < stats.mcnemar_exact(500, 700) < 1e-8


def test_compare_paired_verdicts():
    rng = np.random.default_rng(0)
    base = rng.random(1000) < 0.95
    # B fixes 3 images A gets wrong: too few discordant images to tell them apart
    b = base.copy()
    b[np.flatnonzero(~base)[:3]] = True
    small = stats.compare_paired(base, b)
    assert (small.only_a, small.only_b) == (0, 3)
    assert small.verdict(("A", "B")) == stats.NO_DIFFERENCE and not small.significant()
    # B fixes 20: that is a real difference
    b[np.flatnonzero(~base)[:20]] = True
    large = stats.compare_paired(base, b)
    assert large.verdict(("A", "B")) == "B is more accurate" and large.p_value < 1e-5
    assert large.difference == pytest.approx(-0.02)
    assert "discordant" in str(large)


@pytest.mark.parametrize("bad, error", [
    (dict(successes=5, n=0), ValueError),
    (dict(successes=11, n=10), ValueError),
    (dict(successes=True, n=10), TypeError),
    (dict(successes=2.5, n=10), TypeError),
    (dict(successes=-1, n=10), ValueError),
])
def test_wilson_rejects_bad_counts(bad, error):
    with pytest.raises(error):
        stats.wilson_interval(**bad)


def test_paired_inputs_checked():
    with pytest.raises(ValueError, match="same images"):
        stats.compare_paired([True, False], [True])
    with pytest.raises(ValueError, match="booleans"):
        stats.accuracy_interval([0.5, 1.0])
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson_interval(1, 2, confidence=0.5)


def test_paired_difference_interval_covers_the_true_difference():
    """Monte Carlo coverage of Newcombe's interval: about 95 % for correlated classifiers."""
    rng = np.random.default_rng(0)
    n, trials, covered = 300, 2000, 0
    # per image: both right 0.85, only A 0.06, only B 0.03, neither 0.06 -> difference +0.03
    cells = np.array([0.85, 0.06, 0.03, 0.06])
    for _ in range(trials):
        kind = rng.choice(4, size=n, p=cells)
        a, b = np.isin(kind, (0, 1)), np.isin(kind, (0, 2))
        low, high = stats.paired_difference_interval(a, b)
        covered += low <= 0.03 <= high
    assert 0.93 <= covered / trials <= 0.975


def test_paired_difference_interval_properties():
    a = np.array([True] * 90 + [False] * 10)
    same = stats.paired_difference_interval(a, a)
    # identical classifiers: the interval is around 0, and narrow
    assert same[0] <= 0 <= same[1] and same[1] - same[0] < 0.07
    b = a.copy()
    b[:8] = False  # B misses 8 images A gets right
    low, high = stats.paired_difference_interval(a, b)
    assert 0 < low < 0.08 < high < 0.2  # contains the difference, excludes 0 (McNemar agrees)
    assert stats.compare_paired(a, b).significant()
    # swapping A and B mirrors the interval
    mirrored = stats.paired_difference_interval(b, a)
    assert mirrored == pytest.approx((-high, -low))
    # all right on both: no difference, inside [-1, 1]
    ones = np.ones(50, bool)
    assert stats.paired_difference_interval(ones, ones)[0] <= 0 <= 1
    with pytest.raises(ValueError, match="same images"):
        stats.paired_difference_interval(ones, ones[:10])


def test_holm_adjust_matches_the_step_down_rule():
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4*0.01, 3*0.03, max(2*0.04, 0.09), max(0.5, 0.09)
    np.testing.assert_allclose(stats.holm_adjust([0.01, 0.04, 0.03, 0.5]),
                               [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(stats.holm_adjust([0.3, 0.6]), [0.6, 0.6])
    assert stats.holm_adjust([0.9, 0.8, 0.7]).max() <= 1.0
    assert stats.holm_adjust([0.02])[0] == 0.02


@pytest.mark.parametrize("bad", [[], [0.2, 1.5], [-0.1], [[0.1, 0.2]], [float("nan")]])
def test_holm_adjust_rejects_what_is_not_a_family_of_p_values(bad):
    with pytest.raises(ValueError, match="p_values"):
        stats.holm_adjust(bad)


def test_holm_family_states_each_verdict_before_and_after_the_correction():
    # 30 vs 10 discordant images: p = 0.0022; 14 vs 4: p = 0.031; 5 vs 5: p = 1
    a = np.r_[np.ones(30, bool), np.zeros(10, bool)]
    b = ~a
    strong = stats.compare_paired(a, b)
    weak = stats.compare_paired(np.r_[np.ones(14, bool), np.zeros(4, bool)],
                                np.r_[np.zeros(14, bool), np.ones(4, bool)])
    none = stats.compare_paired(np.r_[np.ones(5, bool), np.zeros(5, bool)],
                                np.r_[np.zeros(5, bool), np.ones(5, bool)])
    table = stats.holm_family({"strong": strong, "weak": weak, "none": none, "reverse":
                               stats.compare_paired(b, a)})
    assert list(table.index) == ["strong", "weak", "none", "reverse"]
    assert table.loc["strong", "verdict"] == "A is more accurate"
    assert table.loc["reverse", "after Holm"] == "B is more accurate"
    # 0.031 alone is a verdict; times the three tests with larger p it is not
    assert table.loc["weak", "p"] < 0.05 and table.loc["weak", "verdict"] == "A is more accurate"
    assert table.loc["weak", "Holm p"] > 0.05
    assert table.loc["weak", "after Holm"] == stats.NO_DIFFERENCE
    assert table.loc["none", "after Holm"] == stats.NO_DIFFERENCE
    np.testing.assert_allclose(table["Holm p"], stats.holm_adjust(table["p"]))
    assert table.loc["strong", "difference (points)"] == 50.0
    with pytest.raises(TypeError, match="family\\['x'\\]"):
        stats.holm_family({"x": 0.01})
    with pytest.raises(ValueError, match="non-empty"):
        stats.holm_family({})
