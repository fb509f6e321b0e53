"""The paper's tables from the artefacts, and the comparison with the published values."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pandas as pd
import yaml

STAT_COLUMNS = ["train_auc", "incorrect_auc", "correct_auc", "test_auc"]


def reference_values() -> dict:
    """Published values (Chitturi et al., MLST 1 (2020) 023002, CC BY 4.0), shipped with the package."""
    return yaml.safe_load(resources.files("losslandscapes").joinpath("data/reference_values.yaml").read_text())


def landscape_row(exp: dict, minima: pd.DataFrame, ts: pd.DataFrame, metrics: pd.DataFrame) -> dict:
    """One table row: database counts, the global minimum's values and mean/sd over all minima."""
    ok = ts[~ts["degenerate"].astype(bool)] if len(ts) else ts
    row = {
        "experiment": exp["id"], "error": exp["error"], "hidden_layers": len(exp["hidden"]),
        "widths": list(exp["hidden"]), "n_train": exp["n_train"],
        "min": len(minima), "min_sym": int(minima["sym_class"].nunique()),
        "ts": len(ok), "ts_sym": int(ok["sym_class"].nunique()) if len(ok) else 0,
        "ts_degenerate": int(len(ts) - len(ok)),
    }
    g = int(np.argmin(metrics["train_loss"].to_numpy()))
    row["train_gmin_auc"] = metrics["train_auc"].iloc[g]
    row["train_gmin_loss"] = metrics["train_loss"].iloc[g]
    row["test_gmin_auc"] = metrics["test_auc"].iloc[g]
    row["test_gmin_loss"] = metrics["test_ce"].iloc[g]
    row["test_gmin_loss_with_reg"] = metrics["test_loss"].iloc[g]
    for col in STAT_COLUMNS:
        v = metrics[col].to_numpy(float)
        v = v[np.isfinite(v)]
        row[f"{col}_mean"] = float(v.mean()) if len(v) else math.nan
        row[f"{col}_sd"] = float(v.std(ddof=0)) if len(v) else math.nan
    return row


def _key(row: dict, kind: str):
    if kind == "counts":
        return (row["hidden_layers"], int(row["n_train"]))
    return float(row["error"])


def comparison(rows: list[dict], reference: list[dict], kind: str) -> pd.DataFrame:
    """Long table: experiment, column, paper, ours, ours - paper (only cells the paper gives)."""
    ref = {_key(r, kind): r for r in reference}
    out = []
    for row in rows:
        r = ref.get(_key(row, kind))
        if r is None:
            continue
        for col, paper in r.items():
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
