"""How complete a sample of classes is (docs/methods.md §6): coverage and Chao estimates.

A search's outcomes are labels (the symmetry class each quench reached). With n outcomes, S_obs
distinct classes, f1 classes seen exactly once and f2 exactly twice:

- coverage = 1 - f1/n, the estimated probability that the next outcome is a class already seen;
- Chao1 = S_obs + f1 (f1 - 1) / (2 (f2 + 1)), the bias-corrected lower-bound estimate of the
  number of classes (Chao 2005; equal to S_obs + f1^2/(2 f2) up to O(1/f2) when f2 > 0), with the
  log-normal 95 % interval of Chao (1987), whose lower end is never below S_obs.

Basin-hopping outcomes are correlated along a chain, so for them the chains, which are
independent, are the sampling units (``chain_coverage``, incidence data); ``class_coverage`` is for
independent outcomes (transition states found by independent attempts).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import gammaln

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class Coverage:
    n: int  # outcomes counted
    units: int  # independent sampling units: n for single outcomes, the chains for incidence data
    classes: int  # distinct classes observed (S_obs)
    f1: int  # classes seen once (incidence: found by exactly one unit)
    f2: int  # classes seen twice (incidence: found by exactly two units)
    coverage: float  # estimated probability that the next outcome is a known class (nan if undefined)
    chao: float  # estimated number of classes (Chao1; Chao2 for incidence data)
    chao_low: float  # 95 % interval
    chao_high: float

    def as_dict(self) -> dict:
        return asdict(self)


def _chao(S: int, f1: int, f2: int, a: float) -> tuple[float, float, float]:
    """Bias-corrected Chao estimate S + a f1 (f1 - 1) / (2 (f2 + 1)) and its log-normal 95 %
    interval (Chao 1987, 2005); ``a`` is 1 for Chao1 and (T - 1)/T for Chao2 over T units."""
    f0 = a * f1 * (f1 - 1) / (2 * (f2 + 1))
    if f0 <= 0:
        return S, S, S
    var = (a * f1 * (f1 - 1) / (2 * (f2 + 1)) + a ** 2 * f1 * (2 * f1 - 1) ** 2 / (4 * (f2 + 1) ** 2)
           + a ** 2 * f1 ** 2 * f2 * (f1 - 1) ** 2 / (4 * (f2 + 1) ** 4))
    c = math.exp(Z95 * math.sqrt(math.log(1 + var / f0 ** 2)))
    return S + f0, S + f0 / c, S + f0 * c


def class_coverage(labels) -> Coverage:
    """Good-Turing coverage 1 - f1/n and Chao1 of independent outcomes ``labels[n]`` (any hashable
    labels; negatives are failures and are not counted)."""
    labels = np.asarray(labels)
    labels = labels[labels >= 0] if labels.dtype.kind in "iu" else labels
    n = len(labels)
    if n == 0:
        return Coverage(0, 0, 0, 0, 0, math.nan, math.nan, math.nan, math.nan)
    counts = np.unique(labels, return_counts=True)[1]
    S, f1, f2 = len(counts), int((counts == 1).sum()), int((counts == 2).sum())
    return Coverage(n, n, S, f1, f2, 1 - f1 / n, *_chao(S, f1, f2, 1.0))


def chain_coverage(labels, chains) -> Coverage:
    """Coverage and Chao2 of the classes ``labels[n]`` found by basin-hopping chains
    ``chains[n]``, with the chains as the sampling units (incidence data; Chao and Jost 2012,
    Chao et al. 2014). Only the units need be independent: steps within a chain may be as correlated
    as a Markov chain makes them. With T chains, U incidences (classes found, summed over chains),
    Q1 and Q2 classes found by exactly one and two chains:
    coverage = 1 - Q1/U (T - 1) Q1 / ((T - 1) Q1 + 2 Q2), undefined (nan) with fewer than 2 chains;
    Chao2 = S_obs + (T - 1)/T Q1 (Q1 - 1) / (2 (Q2 + 1))."""
    labels, chains = np.asarray(labels), np.asarray(chains)
    ok = labels >= 0
    labels, chains = labels[ok], chains[ok]
    n, T = len(labels), len(np.unique(chains))
    if n == 0:
        return Coverage(0, 0, 0, 0, 0, math.nan, math.nan, math.nan, math.nan)
    found = np.unique(np.stack([labels, chains]), axis=1)[0]  # one entry per (class, chain) found
    counts = np.unique(found, return_counts=True)[1]  # chains that found each class
    S, q1, q2, U = len(counts), int((counts == 1).sum()), int((counts == 2).sum()), len(found)
    if T < 2:
        cov = math.nan
    else:
        cov = 1 - q1 / U * ((T - 1) * q1 / ((T - 1) * q1 + 2 * q2)) if q1 else 1.0
    return Coverage(n, T, S, q1, q2, cov, *_chao(S, q1, q2, (T - 1) / T))


# Extrapolation of a sample of independent outcomes (abundance data): how complete a larger or
# smaller sample would be (Chao and Jost 2012, Ecology 93:2533; Chao et al. 2014, Ecol. Monogr.
# 84:45; the estimators of iNEXT). ``counts[S]`` holds how often each observed class was seen.


def _unseen(counts) -> tuple[int, int, float, float]:
    """(n, f1, f0, A): sample size, singletons, the Chao1 estimate of unseen classes
    f0 = (n - 1)/n f1^2/(2 f2) (f1 (f1 - 1)/2 (n - 1)/n where f2 = 0), and the factor
    A = n f0 / (n f0 + f1) by which each further outcome shrinks the share of unseen classes."""
    counts = np.asarray(counts)
    n, f1, f2 = int(counts.sum()), int((counts == 1).sum()), int((counts == 2).sum())
    f0 = (n - 1) / n * (f1 ** 2 / (2 * f2) if f2 else f1 * (f1 - 1) / 2)
    return n, f1, f0, (n * f0 / (n * f0 + f1) if f1 else 0.0)


def _missed(counts, k: int) -> np.ndarray:
    """Per class, the probability C(n - x, k) / C(n, k) that a random subsample of ``k`` of the
    n outcomes misses it (x: its count)."""
    x = np.asarray(counts, float)
    n = x.sum()
    out = np.zeros_like(x)
    ok = n - x >= k
    out[ok] = np.exp(gammaln(n - x[ok] + 1) - gammaln(n - x[ok] - k + 1) + gammaln(n - k + 1) - gammaln(n + 1))
    return out


def coverage_at(counts, k: int) -> float:
    """Estimated coverage (probability that the next outcome is a known class) of a sample of
    ``k`` outcomes, from the class abundances ``counts`` of a sample of n: interpolated for
    k < n, extrapolated as 1 - f1/n A^(k - n + 1) for k >= n."""
    n, f1, _, A = _unseen(counts)
    if k >= n:
        return 1.0 - f1 / n * A ** (k - n + 1)
    # 1 - sum x/n C(n - x, k) / C(n - 1, k) (Chao and Jost 2012, eq. 4a)
    return float(1.0 - (np.asarray(counts) * _missed(counts, k)).sum() / (n - k))


def classes_at(counts, k: int) -> float:
    """Estimated number of classes a sample of ``k`` outcomes finds: interpolated for k < n,
    S_obs + f0 (1 - A^(k - n)) for k >= n (never above Chao1)."""
    n, _, f0, A = _unseen(counts)
    if k >= n:
        return len(counts) + f0 * (1.0 - A ** (k - n))
    return float((1.0 - _missed(counts, k)).sum())


def sample_for_coverage(counts, target: float, limit: int) -> int:
    """The smallest sample size k >= n whose extrapolated coverage reaches ``target``, at most
    ``limit`` (also where the target is out of reach)."""
    n, f1, _, A = _unseen(counts)
    if coverage_at(counts, n) >= target:
        return n
    if A <= 0.0 or target >= 1.0:
        return limit
    k = n - 1 + math.ceil(math.log(n * (1.0 - target) / f1) / math.log(A))
    return int(min(max(k, n), limit))
