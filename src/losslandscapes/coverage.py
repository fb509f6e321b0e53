"""How complete a sample of classes is (docs/methods.md §6): Good-Turing coverage and Chao1.

A search's outcomes are labels (the symmetry class each quench reached). With n outcomes, S_obs
distinct classes, f1 classes seen exactly once and f2 exactly twice:

- coverage = 1 - f1/n, the estimated probability that the next outcome is a class already seen;
- Chao1 = S_obs + f1 (f1 - 1) / (2 (f2 + 1)), the bias-corrected lower-bound estimate of the
  number of classes (Chao 2005; equal to S_obs + f1^2/(2 f2) up to O(1/f2) when f2 > 0), with the
  log-normal 95 % interval of Chao (1987), whose lower end is never below S_obs.

Basin-hopping outcomes are correlated along a chain, so these are guides to completeness, not
exact probabilities.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class Coverage:
    n: int  # outcomes counted
    classes: int  # distinct classes observed (S_obs)
    f1: int  # classes seen once
    f2: int  # classes seen twice
    coverage: float  # 1 - f1/n (nan when n = 0)
    chao1: float  # estimated number of classes
    chao1_low: float  # 95 % interval
    chao1_high: float

    def as_dict(self) -> dict:
        return asdict(self)


def class_coverage(labels) -> Coverage:
    """Coverage and Chao1 of the outcomes ``labels[n]`` (any hashable labels; negatives are
    failures and are not counted)."""
    labels = np.asarray(labels)
    labels = labels[labels >= 0] if labels.dtype.kind in "iu" else labels
    n = len(labels)
    counts = np.unique(labels, return_counts=True)[1] if n else np.zeros(0, int)
    S, f1, f2 = len(counts), int((counts == 1).sum()), int((counts == 2).sum())
    if n == 0:
        return Coverage(0, 0, 0, 0, math.nan, math.nan, math.nan, math.nan)
    f0 = f1 * (f1 - 1) / (2 * (f2 + 1))
    chao1 = S + f0
    low = high = chao1
    if f0 > 0:  # Chao (2005), bias-corrected variance; log-normal interval of the unseen part
        var = (f1 * (f1 - 1) / (2 * (f2 + 1)) + f1 * (2 * f1 - 1) ** 2 / (4 * (f2 + 1) ** 2)
               + f1 ** 2 * f2 * (f1 - 1) ** 2 / (4 * (f2 + 1) ** 4))
        c = math.exp(Z95 * math.sqrt(math.log(1 + var / f0 ** 2)))
        low, high = S + f0 / c, S + f0 * c
    return Coverage(n, S, f1, f2, 1 - f1 / n, chao1, low, high)
