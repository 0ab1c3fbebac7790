"""A/B statistics against values worked by hand."""

import pytest

from uysp.stats import probability_best, two_proportion_test, wilson_interval


def test_two_proportion_test_matches_the_textbook():
    # 40/200 against 60/200: pooled 0.25, se 0.0433, z 2.309, two-sided p 0.0209.
    result = two_proportion_test(40, 200, 60, 200)
    assert result.difference == pytest.approx(0.10)
    assert result.z == pytest.approx(2.3094, abs=1e-4)
    assert result.p_value == pytest.approx(0.0209, abs=1e-4)


def test_two_proportion_test_is_symmetric():
    forward, backward = two_proportion_test(40, 200, 60, 200), two_proportion_test(60, 200, 40, 200)
    assert backward.z == pytest.approx(-forward.z)
    assert backward.p_value == pytest.approx(forward.p_value)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(10, 100, 10, 100), (0, 50, 0, 60), (5, 5, 7, 7), (3, 0, 1, 10)]
)
def test_no_evidence_gives_p_one_or_close(x1, n1, x2, n2):
    assert two_proportion_test(x1, n1, x2, n2).p_value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (20, 100, 0.1333, 0.2888), (0, 0, 0.0, 1.0)],
)
def test_wilson_interval(x, n, low, high):
    got = wilson_interval(x, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_probability_best_sums_to_one_and_favours_the_clear_winner():
    odds = probability_best({"A": (20, 400), "B": (60, 400), "C": (22, 400)})
    assert sum(odds.values()) == pytest.approx(1.0)
    assert odds["B"] > 0.99


def test_probability_best_is_even_between_equal_variants_and_repeatable():
    odds = probability_best({"A": (30, 300), "B": (30, 300)})
    assert odds["A"] == pytest.approx(0.5, abs=0.02)
    assert odds == probability_best({"A": (30, 300), "B": (30, 300)})
    assert probability_best({}) == {}
