"""The paper's qualitative findings, each checked on our databases and on its own published numbers.

A claim is a rule over values per experiment id (the ids of the default config). It is evaluated
twice: on our table rows (``tables.landscape_row``) and on the paper's published rows
(``paper_rows``), so every rule is seen to reproduce the paper's own reading of its tables. A
claim whose experiments or columns are missing is "not testable". Counts of minima are compared
at an equal number of quenches: the symmetry classes reached in the first n quenches of each
landscape, n the smallest number among the landscapes compared (the paper's counts are its
database sizes). Nothing here is tuned to make a claim hold (docs/methods.md §9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

HOLDS, FAILS, UNTESTABLE = "holds", "does not hold", "not testable"
ERRORS = (0, 10, 50, 100)
SINGLE_FUNNEL = 0.9  # share of connected classes that must lie in the global minimum's funnel


class Missing(KeyError):
    """An experiment or column that a claim needs is absent."""


class Evidence:
    """Values per experiment: ``rows`` {id: {column: value}}; ``classes`` {id: class of every
    quench that reached a minimum, in merge order} (ours), or None (the paper's database sizes)."""

    def __init__(self, rows: dict, classes: dict | None = None):
        self.rows, self.classes = rows, classes

    def get(self, exp: str, col: str) -> float:
        v = self.rows.get(exp, {}).get(col)
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            raise Missing(f"{exp}.{col}")
        return float(v)

    def counts(self, exps: list[str]) -> tuple[list[int], str]:
        """Minima counts of ``exps`` at an equal sample, and the sample in words."""
        if self.classes is None:
            return [int(self.get(e, "min")) for e in exps], "database sizes"
        for e in exps:
            if e not in self.classes:
                raise Missing(e)
        n = min(len(self.classes[e]) for e in exps)
        return [len(np.unique(self.classes[e][:n])) for e in exps], f"classes in the first {n} quenches"

    def ts(self, exp: str) -> float:
        return self.get(exp, "ts_sym" if self.classes is not None else "ts")


@dataclass(frozen=True)
class Claim:
    section: str
    text: str
    rule: Callable[[Evidence], tuple[bool, str]]  # (holds?, our numbers in words)


def _fmt(values) -> str:
    return ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)


def _more_with_error(ev: Evidence):
    ok, text = True, []
    for d in ("D1", "D2"):
        exps = [f"{d}-e{e}" for e in ERRORS]
        c, how = ev.counts(exps)
        t = [ev.ts(e) for e in exps]
        ok &= all(x > c[0] for x in c[1:]) and all(x > t[0] for x in t[1:])
        text.append(f"{d} at 0/10/50/100 %: minima {_fmt(c)} ({how}); TS {_fmt([int(x) for x in t])}")
    return ok, "; ".join(text)


def _more_minima(cases: list[tuple[str, str, str]]):
    """Rule: in every case (label, experiment with more minima, experiment with fewer), the first
    has more minima than the second, at an equal sample."""
    def rule(ev: Evidence):
        ok, text = True, []
        for label, more, fewer in cases:
            (a, b), how = ev.counts([more, fewer])
            ok &= a > b
            text.append(f"{label}: {more} {a} vs {fewer} {b} ({how})")
        return ok, "; ".join(text)
    return rule


def _gmin_loss_rises(ev: Evidence):
    ok, text = True, []
    for d in ("D1", "D2"):
        v = [ev.get(f"{d}-e{e}", "train_gmin_loss") for e in (0, 10, 50)]
        ok &= v[0] < v[1] < v[2]
        text.append(f"{d} at 0/10/50 %: {_fmt(v)}")
    return ok, "; ".join(text)


def _test_beats_train(error: int):
    def rule(ev: Evidence):
        ok, text = True, []
        for d in ("D1", "D2"):
            tr, te = ev.get(f"{d}-e{error}", "train_gmin_auc"), ev.get(f"{d}-e{error}", "test_gmin_auc")
            ok &= te > tr
            text.append(f"{d}: testing {te:.4g} vs training {tr:.4g}")
        return ok, "; ".join(text)
    return rule


def _below_half_at_100(ev: Evidence):
    v = {"D1": ev.get("D1-e100", "test_gmin_auc"), "D2": ev.get("D2-e100", "test_gmin_auc"),
         "MNIST (mean)": ev.get("MNIST-e100", "test_auc_mean")}
    return all(x < 0.5 for x in v.values()), "; ".join(f"{k} {x:.4g}" for k, x in v.items())


def _spread_grows(ev: Evidence):
    ok, text = True, []
    for d in ("D1", "D2", "MNIST"):
        lo, hi = ev.get(f"{d}-e0", "test_auc_sd"), ev.get(f"{d}-e100", "test_auc_sd")
        ok &= hi > lo
        text.append(f"{d}: {lo:.2g} at 0 % vs {hi:.2g} at 100 %")
    return ok, "; ".join(text)


def _k2_generalises(ev: Evidence):
    ok, text = True, []
    for k2, full in (("D1-h10-k2", "D1-e0"), ("D1-h5-k2", "D1-h5-full")):
        a, b = ev.get(k2, "test_gmin_auc"), ev.get(full, "test_gmin_auc")
        ok &= a >= b - 0.01
        text.append(f"{k2} {a:.4g} vs full {b:.4g}")
    return ok, "; ".join(text)


def _single_funnel(ev: Evidence):
    exps = [f"{d}-e{e}" for d in ("D1", "D2") for e in ERRORS]
    v = [ev.get(e, "funnel") for e in exps]
    return min(v) >= SINGLE_FUNNEL, "share of connected classes in the global minimum's funnel: " + \
        ", ".join(f"{e} {x:.2f}" for e, x in zip(exps, v))


CLAIMS = (
    Claim("Tables 1, 2", "Minima and transition-state counts rise with mislabelling (every error level above 0 %)", _more_with_error),
    Claim("Tables 1, 2", "A larger configuration space (D1) gives more minima than a smaller one (D2)",
          _more_minima([(f"{e} %", f"D1-e{e}", f"D2-e{e}") for e in ERRORS])),
    Claim("Tables 1, 2", "The global minimum's training loss rises with the error from 0 to 50 %", _gmin_loss_rises),
    Claim("Tables 1, 2", "At 10 % error the global minimum's testing AUC exceeds its training AUC", _test_beats_train(10)),
    Claim("Tables 1, 2", "At 50 % error the global minimum's testing AUC exceeds its training AUC", _test_beats_train(50)),
    Claim("Tables 1-3", "At 100 % error the testing AUC falls below 0.5", _below_half_at_100),
    Claim("Tables 1-3, Figure 5", "The spread (sd) of testing AUC over minima grows with the error (100 % vs 0 %)", _spread_grows),
    Claim("Section 5, Figure 6", "Locality k = 1 leaves very few minima (fewer than full connectivity)",
          _more_minima([("full vs k = 1", "D1-e0", "D1-h10-k1")])),
    Claim("Section 5, Figures 6, 7", "Locality k = 2 and 3 give more minima than full connectivity",
          _more_minima([(f"k = {k}, {w} hidden", f"D1-h{w}-k{k}", full) for w, full in ((10, "D1-e0"), (5, "D1-h5-full"))
                        for k in (2, 3)])),
    Claim("Section 5, Figures 6, 7", "k = 2 generalises as well as full connectivity (global minimum's testing AUC within 0.01 or above)", _k2_generalises),
    Claim("Table 4, Figure 8", "Deeper networks have more minima (three hidden layers vs two)",
          _more_minima([(f"N = {n}", f"D1-3HL-N{n}", f"D1-2HL-N{n}") for n in (100, 1000)])),
    Claim("Table 4, Figure 8", "Fewer data give more minima (N = 100 vs 1000)",
          _more_minima([(f"{h} layers", f"D1-{h}HL-N100", f"D1-{h}HL-N1000") for h in (2, 3)])),
    Claim("Figures 1-4", f"The D1 and D2 landscapes are single-funnelled (at least {SINGLE_FUNNEL:.0%} of connected classes have a barrier towards the global minimum below their height above it)", _single_funnel),
)


def evaluate(ev: Evidence) -> list[tuple[str, str]]:
    """(verdict, numbers in words) of every claim."""
    out = []
    for c in CLAIMS:
        try:
            ok, text = c.rule(ev)
            out.append((HOLDS if ok else FAILS, text))
        except Missing as m:
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
