"""The paper's qualitative findings, each checked on our databases and on its own published numbers.

A claim is a rule over values per experiment id (the ids of the default config), evaluated twice:
on our table rows and independent draws, and on the paper's published rows (``paper_rows``), so
every rule is seen to reproduce the paper's own reading of its tables. Each verdict is three-valued
(docs/methods.md §9):

- value claims on the global minimum compare the values of independent draws of the training set
  (paired by draw: the error levels of one draw share their items) by the 95 % t-interval of the
  mean difference;
- count claims compare the 95 % intervals of Chao2, the estimated number of symmetry classes;
- spreads compare variances by the 95 % F-interval of their ratio, shares by the Wilson interval.

A claim ``holds`` when its interval lies on the claimed side, is ``contradicted`` when it lies on
the other side, and is ``undecided`` otherwise (one draw, overlapping intervals). A claim of
several parts holds when every part holds and is contradicted when any part is. The paper's
numbers have no intervals: its verdicts compare point values. A claim whose experiments or
columns are missing is "not testable". Nothing here is tuned to make a claim hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

HOLDS, CONTRADICTED, UNDECIDED, UNTESTABLE = "holds", "contradicted", "undecided", "not testable"
ERROR_LEVELS = (0, 10, 50, 100)
SINGLE_FUNNEL = 0.9  # share of connected classes that must lie in the global minimum's funnel
K2_MARGIN = 0.01  # "generalises as well": testing AUC at most this much below full connectivity
TS_DECIDES = 0.9  # transition-state counts are compared only where both searches reached this coverage
LEVEL = 0.95


class NotInRun(KeyError):
    """An experiment or column that a claim needs is absent."""


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def above(self, x: float) -> str:
        """Verdict of "the quantity exceeds x"."""
        return HOLDS if self.low > x else CONTRADICTED if self.high < x else UNDECIDED

    def below(self, x: float) -> str:
        return HOLDS if self.high < x else CONTRADICTED if self.low > x else UNDECIDED

    def text(self) -> str:
        return f"{self.low:.3g}" if self.low == self.high else f"[{self.low:.3g}, {self.high:.3g}]"


def mean_interval(v) -> Interval:
    """95 % t-interval of the mean of ``v``; a single value is a point (the paper's), and two or
    more equal values too."""
    v = np.asarray(v, float)
    m = float(v.mean())
    if len(v) < 2:
        return Interval(m, m)
    half = stats.t.ppf(0.5 + LEVEL / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return Interval(m - half, m + half)


def variance_ratio_interval(sd_a: float, n_a: int, sd_b: float, n_b: int, point: bool) -> Interval:
    """95 % interval of var_a / var_b (F distribution; ``sd`` with ddof 0 over n values); every
    ratio where either side has a single value (no spread to compare)."""
    if not point and (n_a < 2 or n_b < 2):
        return Interval(0.0, math.inf)
    va, vb = sd_a**2 * n_a / max(n_a - 1, 1), sd_b**2 * n_b / max(n_b - 1, 1)
    r = va / vb if vb > 0 else (math.inf if va > 0 else math.nan)
    if point:
        return Interval(r, r)
    alpha = (1 - LEVEL) / 2
    return Interval(r / stats.f.ppf(1 - alpha, n_a - 1, n_b - 1), r / stats.f.ppf(alpha, n_a - 1, n_b - 1))


def wilson_interval(share: float, n: int, point: bool) -> Interval:
    """95 % Wilson score interval of a share of ``n``."""
    if point or n == 0:
        return Interval(share, share)
    z = stats.norm.ppf(0.5 + LEVEL / 2)
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(centre - half, centre + half)


def combine(verdicts: list[str]) -> str:
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return HOLDS if all(v == HOLDS for v in verdicts) else UNDECIDED


class Evidence:
    """Values per experiment: ``rows`` {id: {column: value}}; ``draws`` {id: [{column: value}
    per independent draw, the first first]} (ours), or None: the paper's single published values,
    compared as points."""

    def __init__(self, rows: dict, draws: dict | None = None):
        self.rows, self.draws = rows, draws
        self.point = draws is None

    def get(self, exp: str, col: str) -> float:
        v = self.rows.get(exp, {}).get(col)
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            raise NotInRun(f"{exp}.{col}")
        return float(v)

    def per_draw(self, exp: str, col: str) -> np.ndarray:
        if self.point:
            return np.array([self.get(exp, col)])
        if exp not in self.draws:
            raise NotInRun(exp)
        return np.array([d[col] for d in self.draws[exp]], float)

    def paired(self, a: str, col_a: str, b: str, col_b: str) -> tuple[Interval, int]:
        """Interval of the mean of (a.col_a - b.col_b) over the draws both have, and their number."""
        va, vb = self.per_draw(a, col_a), self.per_draw(b, col_b)
        n = min(len(va), len(vb))
        return mean_interval(va[:n] - vb[:n]), n

    def classes(self, exp: str) -> Interval:
        """Estimated symmetry classes (Chao2 95 % interval); the paper's database size."""
        if self.point:
            v = self.get(exp, "min")
            return Interval(v, v)
        return Interval(self.get(exp, "chao_low"), self.get(exp, "chao_high"))

    def ts(self, exp: str) -> tuple[float, float]:
        """(transition-state classes, coverage of that search); the paper's database size."""
        if self.point:
            return self.get(exp, "ts"), 1.0
        return self.get(exp, "ts_sym"), self.get(exp, "ts_coverage")


@dataclass(frozen=True)
class Claim:
    section: str
    text: str
    rule: Callable[[Evidence], tuple[str, str]]  # (verdict, our numbers in words)


def _more(ev: Evidence, more: str, fewer: str) -> tuple[str, str]:
    a, b = ev.classes(more), ev.classes(fewer)
    verdict = HOLDS if a.low > b.high else CONTRADICTED if a.high < b.low else UNDECIDED
    return verdict, f"{more} {a.text()} vs {fewer} {b.text()}"


def _more_minima(cases: list[tuple[str, str]]):
    """Rule: in every case (experiment with more minima, experiment with fewer), the first has more
    symmetry classes than the second (Chao2 intervals apart)."""
    def rule(ev: Evidence):
        parts = [_more(ev, more, fewer) for more, fewer in cases]
        return combine([v for v, _ in parts]), "; ".join(t for _, t in parts) + _how(ev)
    return rule


def _how(ev: Evidence) -> str:
    return " (database sizes)" if ev.point else " (Chao2, 95 %)"


def _more_with_error(ev: Evidence):
    verdicts, text = [], []
    for d in ("D1", "D2"):
        for e in ERROR_LEVELS[1:]:
            v, t = _more(ev, f"{d}-e{e}", f"{d}-e0")
            verdicts.append(v)
            text.append(t)
            (ts_e, cov_e), (ts_0, cov_0) = ev.ts(f"{d}-e{e}"), ev.ts(f"{d}-e0")
            decided = min(cov_e, cov_0) >= TS_DECIDES
            verdicts.append((HOLDS if ts_e > ts_0 else CONTRADICTED) if decided else UNDECIDED)
            text.append(f"TS {ts_e:.0f} vs {ts_0:.0f}" + ("" if ev.point else f" (TS coverage {cov_e:.2f}, {cov_0:.2f})"))
    return combine(verdicts), "; ".join(text) + _how(ev)


def _on_draws(ev: Evidence, iv: Interval, n: int, verdict: Callable[[Interval], str]) -> tuple[str, str]:
    """(verdict, text) of a value claim over ``n`` draws: ours is undecided on a single draw."""
    if ev.point:
        return verdict(iv), iv.text()
    return (verdict(iv) if n > 1 else UNDECIDED), f"{iv.text()} ({n} draw{'s' if n > 1 else ''})"


def _gmin_loss_rises(ev: Evidence):
    verdicts, text = [], []
    for d in ("D1", "D2"):
        for lo, hi in ((0, 10), (10, 50)):
            v, t = _on_draws(ev, *ev.paired(f"{d}-e{hi}", "train_gmin_loss", f"{d}-e{lo}", "train_gmin_loss"),
                             lambda iv: iv.above(0.0))
            verdicts.append(v)
            text.append(f"{d} loss at {hi} % minus at {lo} %: {t}")
    return combine(verdicts), "; ".join(text)


def _test_beats_train(error: int):
    def rule(ev: Evidence):
        verdicts, text = [], []
        for d in ("D1", "D2"):
            e = f"{d}-e{error}"
            v, t = _on_draws(ev, *ev.paired(e, "test_gmin_auc", e, "train_gmin_auc"), lambda iv: iv.above(0.0))
            verdicts.append(v)
            text.append(f"{d} testing minus training AUC: {t}")
        return combine(verdicts), "; ".join(text)
    return rule


def _below_half_at_100(ev: Evidence):
    verdicts, text = [], []
    for d in ("D1", "D2"):
        draws = ev.per_draw(f"{d}-e100", "test_gmin_auc")
        v, t = _on_draws(ev, mean_interval(draws), len(draws), lambda iv: iv.below(0.5))
        verdicts.append(v)
        text.append(f"{d} {t}")
    m, sd = ev.get("MNIST-e100", "test_auc_mean"), ev.get("MNIST-e100", "test_auc_sd")
    n = 1 if ev.point else int(ev.get("MNIST-e100", "min_sym"))
    half = 0.0 if n < 2 else stats.t.ppf(0.5 + LEVEL / 2, n - 1) * sd * math.sqrt(n / (n - 1)) / math.sqrt(n)
    iv = Interval(m - half, m + half)
    verdicts.append(iv.below(0.5) if n > 1 or ev.point else UNDECIDED)
    text.append(f"MNIST mean over {n} minima {iv.text()}" if n > 1 else f"MNIST mean {m:.4g}")
    return combine(verdicts), "; ".join(text)


def _spread_grows(ev: Evidence):
    verdicts, text = [], []
    for d in ("D1", "D2", "MNIST"):
        hi, lo = f"{d}-e100", f"{d}-e0"
        n_hi, n_lo = (1, 1) if ev.point else (int(ev.get(hi, "min_sym")), int(ev.get(lo, "min_sym")))
        iv = variance_ratio_interval(ev.get(hi, "test_auc_sd"), n_hi, ev.get(lo, "test_auc_sd"), n_lo, ev.point)
        verdicts.append(iv.above(1.0))
        text.append(f"{d}: variance at 100 % over 0 % {iv.text()}")
    return combine(verdicts), "; ".join(text)


def _k2_generalises(ev: Evidence):
    verdicts, text = [], []
    for k2, full in (("D1-h10-k2", "D1-e0"), ("D1-h5-k2", "D1-h5-full")):
        v, t = _on_draws(ev, *ev.paired(k2, "test_gmin_auc", full, "test_gmin_auc"), lambda iv: iv.above(-K2_MARGIN))
        verdicts.append(v)
        text.append(f"{k2} minus full testing AUC: {t}")
    return combine(verdicts), "; ".join(text)


def _single_funnel(ev: Evidence):
    verdicts, text = [], []
    for e in (f"{d}-e{x}" for d in ("D1", "D2") for x in ERROR_LEVELS):
        share, n = ev.get(e, "funnel"), int(ev.get(e, "connected")) - 1
        iv = wilson_interval(share, n, ev.point)
        verdicts.append(HOLDS if iv.low >= SINGLE_FUNNEL else CONTRADICTED if iv.high < SINGLE_FUNNEL else UNDECIDED)
        text.append(f"{e} {share:.2f} of {n} {iv.text()}")
    return combine(verdicts), "share of connected classes in the global minimum's funnel: " + ", ".join(text)


CLAIMS = (
    Claim("Tables 1, 2", "Minima and transition-state counts rise with mislabelling (every error level above 0 %)", _more_with_error),
    Claim("Tables 1, 2", "A larger configuration space (D1) gives more minima than a smaller one (D2)",
          _more_minima([(f"D1-e{e}", f"D2-e{e}") for e in ERROR_LEVELS])),
    Claim("Tables 1, 2", "The global minimum's training loss rises with the error from 0 to 50 %", _gmin_loss_rises),
    Claim("Tables 1, 2", "At 10 % error the global minimum's testing AUC exceeds its training AUC", _test_beats_train(10)),
    Claim("Tables 1, 2", "At 50 % error the global minimum's testing AUC exceeds its training AUC", _test_beats_train(50)),
    Claim("Tables 1-3", "At 100 % error the testing AUC falls below 0.5", _below_half_at_100),
    Claim("Tables 1-3, Figure 5", "The spread (sd) of testing AUC over minima grows with the error (100 % vs 0 %)", _spread_grows),
    Claim("Section 5, Figure 6", "Locality k = 1 leaves very few minima (fewer than full connectivity)",
          _more_minima([("D1-e0", "D1-h10-k1")])),
    Claim("Section 5, Figures 6, 7", "Locality k = 2 and 3 give more minima than full connectivity",
          _more_minima([(f"D1-h{w}-k{k}", full) for w, full in ((10, "D1-e0"), (5, "D1-h5-full")) for k in (2, 3)])),
    Claim("Section 5, Figures 6, 7", f"k = 2 generalises as well as full connectivity (global minimum's testing AUC at most {K2_MARGIN} below)", _k2_generalises),
    Claim("Table 4, Figure 8", "Deeper networks have more minima (three hidden layers vs two)",
          _more_minima([(f"D1-3HL-N{n}", f"D1-2HL-N{n}") for n in (100, 1000)])),
    Claim("Table 4, Figure 8", "Fewer data give more minima (N = 100 vs 1000)",
          _more_minima([(f"D1-{h}HL-N100", f"D1-{h}HL-N1000") for h in (2, 3)])),
    Claim("Figures 1-4", f"The D1 and D2 landscapes are single-funnelled (at least {SINGLE_FUNNEL:.0%} of connected classes have a barrier towards the global minimum below their height above it)", _single_funnel),
)


def evaluate(ev: Evidence) -> list[tuple[str, str]]:
    """(verdict, numbers in words) of every claim."""
    out = []
    for c in CLAIMS:
        try:
            out.append(c.rule(ev))
        except NotInRun as m:
            out.append((UNTESTABLE, f"missing {m.args[0]}"))
    return out


def paper_rows(reference: dict) -> dict:
    """The published tables as rows keyed by our experiment ids."""
    rows = {}
    for table, prefix in (("table1_D1", "D1"), ("table2_D2", "D2"), ("table3_MNIST", "MNIST")):
        for r in reference.get(table, []):
            rows[f"{prefix}-e{r['error']:g}"] = r
    for r in reference.get("table4_multilayer", []):
        rows[f"D1-{r['hidden_layers']}HL-N{r['n_train']}"] = r
    return rows


def claims_table(ours: Evidence, paper: Evidence) -> pd.DataFrame:
    """One row per claim: section, claim, ours (verdict, numbers), paper (verdict, numbers)."""
    rows = []
    for c, (v, t), (pv, pt) in zip(CLAIMS, evaluate(ours), evaluate(paper)):
        rows.append({"section": c.section, "claim": c.text, "verdict": v, "ours": t, "paper_verdict": pv, "paper": pt})
    return pd.DataFrame(rows)
