"""The paper's tables from the artefacts, and the comparison with the published values."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from losslandscapes.landscape.coverage import chain_coverage
from losslandscapes.analysis.disconnectivity import class_graph, funnel_share

STAT_COLUMNS = ["train_auc", "incorrect_auc", "correct_auc", "test_auc"]
GMIN_COLUMNS = ["train_gmin_auc", "train_gmin_loss", "test_gmin_auc", "test_gmin_loss"]
COVERAGE_COLUMNS = ["quenches", "coverage", "chao", "chao_low", "chao_high"]


def reference_values() -> dict:
    """Published values (Chitturi et al., MLST 1 (2020) 023002, CC BY 4.0), shipped with the package."""
    return yaml.safe_load(resources.files("losslandscapes").joinpath("data/reference_values.yaml").read_text())


def class_rows(minima: pd.DataFrame) -> np.ndarray:
    """Row of each symmetry class's representative in ``minima`` (its ``sym_class`` is the id of
    that row), in class order: statistics over minima take one value per class."""
    row_of = pd.Series(np.arange(len(minima)), index=minima["id"].to_numpy())
    return row_of.loc[np.unique(minima["sym_class"].to_numpy())].to_numpy()


def quench_coverage(minima: pd.DataFrame, quenches: pd.DataFrame | None) -> dict:
    """Coverage columns: quenches that reached a minimum, the coverage and Chao2 (with its 95 %
    interval) of the symmetry classes they reached, chains as units (``coverage.chain_coverage``)."""
    if quenches is None:
        return dict.fromkeys(COVERAGE_COLUMNS, math.nan)
    reached = quenches[quenches["minimum"] > 0]
    c = chain_coverage(minima["sym_class"].to_numpy()[reached["minimum"].to_numpy() - 1], reached["chain"].to_numpy())
    return {"quenches": c.n, "coverage": c.coverage, "chao": c.chao, "chao_low": c.chao_low,
            "chao_high": c.chao_high}


def chain_columns(minima: pd.DataFrame, quenches: pd.DataFrame | None) -> dict:
    """How the basin-hopping chains moved: ``acceptance``, the accepted share of the steps after
    each chain's start, and ``returns``, the share of those steps whose quench came back to the
    symmetry class the chain stood in (accepted by Metropolis whatever the temperature)."""
    if quenches is None or not (quenches["step"] > 0).any():
        return {"acceptance": math.nan, "returns": math.nan}
    sym = minima["sym_class"].to_numpy()
    steps = returns = 0
    for _, chain in quenches.sort_values(["chain", "step"], kind="stable").groupby("chain"):
        current = None
        for m, step, accepted in zip(chain["minimum"], chain["step"], chain["accepted"]):
            cls = sym[m - 1] if m > 0 else -1
            if step > 0 and current is not None:
                steps += 1
                returns += int(cls == current)
            if accepted:
                current = cls
    later = quenches[quenches["step"] > 0]
    return {"acceptance": float(later["accepted"].mean()), "returns": returns / max(steps, 1)}


def sample_text(c: dict) -> str:
    """``quench_coverage`` columns in words, for titles."""
    if not c["quenches"] or not math.isfinite(c["coverage"]):
        return "no quench record"
    return f"basin-hopping: n={c['quenches']}, coverage {c['coverage']:.2f}, Chao2 {c['chao']:.0f}"


def landscape_row(exp: dict, minima: pd.DataFrame, ts: pd.DataFrame, metrics: pd.DataFrame,
                  quenches: pd.DataFrame | None = None, ts_coverage: float = math.nan) -> dict:
    """One table row: database counts; how complete the sample behind them is (``quenches``: one
    row per basin-hopping quench; ``ts_coverage``: that of the transition states found); symmetry
    classes connected to the global minimum and the share of the others in its funnel
    (``disconnectivity.funnel_share``); the global minimum's values, and mean/sd over symmetry
    classes (one value each: images of a minimum compute the same function)."""
    ok = ts[~ts["degenerate"].astype(bool)] if len(ts) else ts
    row = {
        "experiment": exp["id"], "error": exp["error"], "hidden_layers": len(exp["hidden"]),
        "widths": list(exp["hidden"]), "n_train": exp["n_train"],
        "min": len(minima), "min_sym": int(minima["sym_class"].nunique()),
        "ts": len(ok), "ts_sym": int(ok["sym_class"].nunique()) if len(ok) else 0,
        "ts_degenerate": int(len(ts) - len(ok)),
        **quench_coverage(minima, quenches),
        **chain_columns(minima, quenches),
        "ts_coverage": float(ts_coverage),
    }
    row["connected"], row["funnel"] = funnel_share(*class_graph(minima, ts)[1:])
    row.update(gmin_values(metrics))
    per_class = metrics.iloc[class_rows(minima)]
    for col in STAT_COLUMNS:
        v = per_class[col].to_numpy(float)
        v = v[np.isfinite(v)]
        row[f"{col}_mean"] = float(v.mean()) if len(v) else math.nan
        row[f"{col}_sd"] = float(v.std(ddof=0)) if len(v) else math.nan
    return row


def gmin_values(metrics: pd.DataFrame) -> dict:
    """The global minimum's (lowest training loss) values: ``GMIN_COLUMNS`` and the testing loss
    with the regularisation term."""
    g = int(np.argmin(metrics["train_loss"].to_numpy()))
    return {"train_gmin_auc": metrics["train_auc"].iloc[g], "train_gmin_loss": metrics["train_loss"].iloc[g],
            "test_gmin_auc": metrics["test_auc"].iloc[g], "test_gmin_loss": metrics["test_ce"].iloc[g],
            "test_gmin_loss_with_reg": metrics["test_loss"].iloc[g]}


def draw_columns(draws: list[dict]) -> dict:
    """Across independent draws (``gmin_values`` of each, the first draw first, each with its
    ``quenches``): their number, the fewest quenches behind a later draw, and the mean and sd
    (ddof 1) of each of ``GMIN_COLUMNS``."""
    out = {"draws": len(draws), "later_draw_quenches": min((d["quenches"] for d in draws[1:]), default=math.nan)}
    for col in GMIN_COLUMNS:
        v = np.array([d[col] for d in draws], float)
        out[f"{col}_draws_mean"] = float(v.mean())
        out[f"{col}_draws_sd"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    return out


def _key(row: dict, kind: str):
    if kind == "counts":
        return (row["hidden_layers"], int(row["n_train"]))
    return float(row["error"])


PAPER_COUNTS = {"min": "min_sym", "ts": "ts_sym"}  # the paper's counts are of symmetry classes (docs/methods.md §1)


def comparison(rows: list[dict], reference: list[dict], kind: str) -> pd.DataFrame:
    """Long table: experiment, column (ours), paper, ours, ours - paper (only cells the paper
    gives). The paper's minima and transition-state counts are compared with our class counts."""
    ref = {_key(r, kind): r for r in reference}
    out = []
    for row in rows:
        r = ref.get(_key(row, kind))
        if r is None:
            continue
        for col, paper in r.items():
            col = PAPER_COUNTS.get(col, col)
            if col in ("error", "hidden_layers", "widths", "n_train") or paper is None or col not in row:
                continue
            ours = row[col]
            out.append({"experiment": row["experiment"], "column": col, "paper": float(paper),
                        "ours": float(ours) if ours is not None else math.nan,
                        "difference": float(ours) - float(paper) if ours is not None else math.nan})
    return pd.DataFrame(out, columns=["experiment", "column", "paper", "ours", "difference"])


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "–"
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def markdown(df: pd.DataFrame, title: str = "") -> str:
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(df.columns) + " |")
    lines.append("|" + "---|" * len(df.columns))
    for r in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in r) + " |")
    return "\n".join(lines) + "\n"
