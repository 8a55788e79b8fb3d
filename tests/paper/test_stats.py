"""The statistics functions against values computed by hand."""

import math

import pytest

from digitlab.paper.stats import paired, summarize


def test_summary_of_four_values():
    summary = summarize([1.0, 2.0, 3.0, 4.0])
    assert summary.n == 4
    assert summary.mean == pytest.approx(2.5)
    assert summary.std == pytest.approx(math.sqrt(5 / 3))  # sum of squares 5, n - 1 = 3
    # t(0.975, 3) = 3.182446; half width = 3.182446 * 1.290994 / 2 = 2.054260
    assert summary.low == pytest.approx(2.5 - 2.054260, abs=1e-5)
    assert summary.high == pytest.approx(2.5 + 2.054260, abs=1e-5)


def test_single_value_has_no_interval():
    summary = summarize([0.97])
    assert summary.mean == 0.97 and math.isnan(summary.std) and math.isnan(summary.low)
    assert summary.format(scale=100) == "97.00"


def test_paired_test_not_significant_when_interval_covers_zero():
    test = paired([0.90, 0.80, 0.70], [0.85, 0.80, 0.60])  # differences 0.05, 0, 0.10
    assert test.difference.mean == pytest.approx(0.05)
    assert test.difference.std == pytest.approx(0.05)
    # t(0.975, 2) = 4.302653; half width = 4.302653 * 0.05 / sqrt(3) = 0.124207
    assert test.difference.low == pytest.approx(0.05 - 0.124207, abs=1e-5)
    assert not test.significant
    # t statistic = 0.05 / (0.05 / sqrt(3)) = sqrt(3); two-sided p with 2 degrees of freedom = 0.2254
    assert test.p_value == pytest.approx(0.2254, abs=1e-3)


def test_paired_test_significant_for_a_consistent_difference():
    test = paired([0.95, 0.96, 0.97, 0.98], [0.90, 0.905, 0.92, 0.925])
    assert test.significant and test.difference.low > 0


def test_paired_needs_equal_lengths():
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])
