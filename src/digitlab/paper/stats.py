"""Statistics over seeds: mean, standard deviation, t-based 95% confidence intervals, paired tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); nan when n < 2
    low: float  # 95% confidence interval of the mean; nan when n < 2
    high: float

    def format(self, scale: float = 1.0, digits: int = 2) -> str:
        if self.n == 0:
            return "-"
        text = f"{self.mean * scale:.{digits}f}"
        if self.n > 1:
            text += f" ± {self.std * scale:.{digits}f} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        return text


def summarize(values: list[float], confidence: float = 0.95) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = sum(values) / n
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class PairedTest:
    difference: Summary  # of a - b, paired by seed
    p_value: float  # two-sided paired t-test; nan when n < 2 or the differences are all equal

    @property
    def significant(self) -> bool:
        """True when the 95% interval of the mean difference excludes zero."""
        return self.difference.n > 1 and not (self.difference.low <= 0.0 <= self.difference.high)


def paired(a: list[float], b: list[float]) -> PairedTest:
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    differences = [x - y for x, y in zip(a, b)]
    summary = summarize(differences)
    p_value = math.nan
    if len(a) > 1 and summary.std > 0:
        p_value = float(scipy_stats.ttest_rel(a, b).pvalue)
    return PairedTest(summary, p_value)
