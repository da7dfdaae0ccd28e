"""The statistics a verdict rests on (method §14): two-sample tests over seeds and Holm's correction.

A comparison is two groups of per-seed values of one measure (say NP-DRAW's and the VAE's domain FID at
one low-data point).  With two or more values a side it is Welch's t-test.  With one value on a side
there is no spread of its own: the test borrows a pooled standard deviation measured on other groups of
the same measure (`pooled_sd`), and its t statistic then has the degrees of freedom of that pooled
estimate (the sum of n - 1 over the groups pooled), not the normal's; with no pooled spread there is no
test at all (`p` is None) and no verdict may rest on it.  One claim usually rests on several
comparisons: `holm` adjusts their p-values together (Holm's step-down), and a verdict reads the adjusted
values only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05   # the level every verdict is judged at, after Holm's correction


@dataclass(frozen=True)
class Spread:
    """A standard deviation pooled over groups, with its degrees of freedom (sum of n - 1)."""
    sd: float
    df: int


@dataclass(frozen=True)
class Test:
    """A two-sided two-sample t-test of mean(a) = mean(b): its name, statistic, degrees of freedom and p-value
    (all None when the data allow no test: then `why` says so)."""
    name: str
    t: float | None = None
    df: float | None = None
    p: float | None = None
    why: str = ""

    @property
    def done(self) -> bool:
        return self.p is not None


def pooled_sd(groups: list[list[float]]) -> Spread | None:
    """The pooled standard deviation of the groups with two or more values (None if there are none)."""
    used = [np.asarray(g, float) for g in groups if len(g) > 1]
    df = sum(len(g) - 1 for g in used)
    if not df:
        return None
    return Spread(math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in used) / df), df)


def t_test(a: list[float], b: list[float], spread: Spread | None = None) -> Test:
    """Welch's t-test with two or more values a side; with fewer, a t-test on `spread` (the pooled sd of
    other groups of the same measure, with its own degrees of freedom); else no test."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or not len(b):
        return Test("none", why="a side has no value")
    if len(a) > 1 and len(b) > 1:
        if a.std() == 0 and b.std() == 0:
            return Test("Welch", why="no spread on either side")
        r = stats.ttest_ind(a, b, equal_var=False)
        return Test("Welch", float(r.statistic), float(r.df), float(r.pvalue))
    if spread is None or spread.sd == 0:
        return Test("pooled t", why="one seed, and no group of this measure with two to pool a spread from")
    t = (a.mean() - b.mean()) / (spread.sd * math.sqrt(1 / len(a) + 1 / len(b)))
    return Test("pooled t", float(t), float(spread.df), float(2 * stats.t.sf(abs(t), spread.df)))


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count among the k tests): the
    i-th smallest of k is max over j <= i of min(1, (k - j + 1) p_(j)); a comparison is significant at
    ALPHA when its adjusted p is below ALPHA, which is Holm's rule."""
    done = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    k, running = len(done), 0.0
    for rank, (p, i) in enumerate(sorted(done)):
        running = max(running, min(1.0, (k - rank) * p))
        out[i] = running
    return out
