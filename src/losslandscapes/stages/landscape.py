"""Workflow steps on landscapes: basin-hopping, pathway searches, independent draws and the
PATHSAMPLE export (see ``stages.data`` for how steps are written)."""

from __future__ import annotations

import logging
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from losslandscapes.data import sets
from losslandscapes.storage.artefacts import read_parquet, require_columns, write_parquet
from losslandscapes.config import Experiment
from losslandscapes.storage.database import Database
from losslandscapes.data.sets import locality_masks
from losslandscapes.potentials.layout import free_mask
from losslandscapes.landscape.symmetry import NetworkSymmetry
from losslandscapes.stages.data import _source

log = logging.getLogger(__name__)

MINIMA_COLUMNS = ["id", "loss", "params", "rms_grad", "min_eig", "n_neg_eig", "sym_class", "found_at_step"]
TS_COLUMNS = ["id", "loss", "params", "min1", "min2", "neg_eig", "n_neg_eig", "rms_grad", "degenerate", "sym_class"]


def load_xy(path: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    df, _ = read_parquet(path)
    require_columns(df, ["x", "label"], path)
    return np.stack(df["x"].to_numpy()), df["label"].to_numpy(np.int64), df


def free_of(exp: Experiment) -> np.ndarray:
    return free_mask(exp.sizes, locality_masks(exp.sizes, exp.locality, exp.tie_break))


def build_potential(exp: Experiment, train_path: str, device):
    """The ``potentials.MLPLoss`` of ``exp`` on its training data."""
    from losslandscapes.potentials.mlp import MLPLoss

    X, y, _ = load_xy(train_path)
    return MLPLoss(exp.sizes, X, y, exp.lam, free_of(exp), exp.regularise_biases, device)


def _open_db(path, settings, exp, pot) -> Database:
    return Database(path, settings, NetworkSymmetry(exp.sizes, pot.free), exp.search.energy_tol, exp.search.distance_tol)


def _minima_table(db: Database, pot) -> pd.DataFrame:
    df = db.minima_frame()
    df["params"] = [pot.to_full(p) for p in df["params"]]
    return df[MINIMA_COLUMNS]


def _ts_table(db: Database, pot) -> pd.DataFrame:
    df = db.ts_frame()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(TS_COLUMNS, [
            "int64", "float64", "object", "int64", "int64", "float64", "int64", "float64", "bool", "int64"])})
    df["params"] = [pot.to_full(p) for p in df["params"]]
    return df[TS_COLUMNS]


def _landscape_meta(exp: Experiment, pot, stats: dict) -> dict:
    return {"experiment": exp.as_dict(), "free_mask": pot.free.astype(int).tolist(),
            "n_free": pot.P, "stats": {k: v for k, v in stats.items() if k != "seconds"}}


def sample_minima(exp: Experiment, train: str, db_path: str, output: str, quenches: str, device: str) -> dict:
    """Basin-hopping into the database at ``db_path``; export the verified minima (``output``) and
    every quench (``quenches``: chain, step, minimum id or -1, accepted)."""
    from losslandscapes.landscape import basinhopping
    from losslandscapes.potentials.mlp import resolve_device

    dev = resolve_device(device)
    pot = build_potential(exp, train, dev)
    identity = {k: v for k, v in exp.as_dict().items() if k != "connect"}  # a new pathway budget keeps the minima
    settings = {"stage": "basinhopping", "experiment": identity}
    db = _open_db(db_path, settings, exp, pot)
    stats = basinhopping.run(pot, db, exp.search, exp.seed, dev)
    table, runs = _minima_table(db, pot), db.quenches_frame()
    db.close()
    log.info("%s: %d minima (%d symmetry-distinct), lowest loss %.10f, %.1f s", exp.id, len(table),
             table["sym_class"].nunique(), table["loss"].min(), stats["seconds"])
    meta = {**_landscape_meta(exp, pot, stats), "experiment": identity}
    write_parquet(quenches, runs, meta)
    write_parquet(output, table, meta)
    return stats


def find_pathways(exp: Experiment, train: str, bh_minima: str, db_path: str, out_minima: str, out_ts: str,
                  device: str) -> dict:
    """Transition states connecting the basin-hopping minima; export minima and TS."""
    from losslandscapes.landscape import connect
    from losslandscapes.potentials.mlp import resolve_device

    dev = resolve_device(device)
    pot = build_potential(exp, train, dev)
    start, _ = read_parquet(bh_minima)
    require_columns(start, MINIMA_COLUMNS, bh_minima)
    digest = hashlib.sha256(np.stack(start["params"].to_numpy()).tobytes()).hexdigest()[:16]
    settings = {"stage": "pathways", "experiment": exp.as_dict(), "start_minima": digest}
    db = _open_db(db_path, settings, exp, pot)
    if not db.minima.ids:
        for r in start.itertuples():
            db.add_minimum(r.loss, pot.to_free(r.params), r.rms_grad, r.min_eig, r.n_neg_eig, r.found_at_step)
        db.commit()
    stats = connect.run(pot, db, exp.connect, exp.search) if exp.transition_states else {"seconds": 0.0}
    minima, ts = _minima_table(db, pot), _ts_table(db, pot)
    db.close()
    meta = _landscape_meta(exp, pot, stats)
    write_parquet(out_minima, minima, meta)
    write_parquet(out_ts, ts, meta)
    return stats


def independent_draws(exp: Experiment, dataset: dict, source: str | None, db_dir: str, output: str, auc: dict,
                      device: str) -> None:
    """The later draws of ``exp`` (1 .. ``exp.draws`` - 1), one row each: its own training set and
    mislabelling (``Experiment.draw_seed``, shared with the other experiments on the data set),
    basin-hopping with the budget ``exp.draw_search`` into ``{db_dir}/draw{k}.sqlite`` (resumable),
    and the values of the lowest minimum it found (``tables.gmin_values``), with how many quenches
    and classes that rests on (docs/methods.md §9)."""
    from dataclasses import replace

    from losslandscapes.landscape import basinhopping
    from losslandscapes.config import derive_seed
    from losslandscapes.analysis.metrics import minimum_metrics
    from losslandscapes.potentials.mlp import MLPLoss, resolve_device
    from losslandscapes.analysis.tables import gmin_values

    dev = resolve_device(device)
    src, _, names = _source(exp, dataset, source)
    rows = []
    for k in range(1, exp.draws):
        e = replace(exp, data_seed=exp.draw_seed(k), seed=derive_seed(exp.seed, f"draw{k}"), search=exp.draw_search,
                    draws=1, draw_search=None)
        train, test, summary = sets.build(e, src, names)
        X, y = np.stack(train["x"].to_numpy()), train["label"].to_numpy(np.int64)
        pot = MLPLoss(e.sizes, X, y, e.lam, free_of(e), e.regularise_biases, dev)
        db = _open_db(Path(db_dir) / f"draw{k}.sqlite", {"stage": "draw", "experiment": e.as_dict()}, e, pot)
        stats = basinhopping.run(pot, db, e.search, e.seed, dev)
        best = np.asarray(db.minima.x[int(np.argmin(db.minima.loss))])[None]  # [1, P] free layout
        cov = db.quench_coverage()
        db.close()
        cpu = pot if dev.type == "cpu" else MLPLoss(e.sizes, X, y, e.lam, free_of(e), e.regularise_biases, resolve_device("cpu"))
        values = gmin_values(minimum_metrics(cpu, best, train, test, e.kind, auc))
        rows.append({"draw": k, "data_seed": e.data_seed, "n_mislabelled": summary["n_mislabelled"], "quenches": cov.n,
                     "classes": cov.classes, "coverage": cov.coverage, "temperature": stats.get("temperature"), **values})
        log.info("%s draw %d: %s", exp.id, k, rows[-1])
    write_parquet(output, pd.DataFrame(rows), {"experiment": exp.as_dict()})


def pathsample_export(minima_path: str, ts_path: str, outdir: str) -> None:
    """PATHSAMPLE's ``min.data`` and ``ts.data`` (text; log-frequency products 0, point-group order 1,
    unit moments of inertia) and ``points.min``/``points.ts`` (unformatted direct-access records:
    one little-endian float64 parameter vector, full layout, per stationary point)."""
    from losslandscapes.storage.artefacts import atomic_path, write_text

    minima, _ = read_parquet(minima_path)
    ts, _ = read_parquet(ts_path)
    out = Path(outdir)
    ts_ok = ts[~ts["degenerate"].astype(bool)] if len(ts) else ts
    write_text(out / "min.data", "".join(f"{e:.12f} 0.0 1 1.0 1.0 1.0\n" for e in minima["loss"]))
    write_text(out / "ts.data", "".join(f"{r.loss:.12f} 0.0 1 {r.min1} {r.min2} 1.0 1.0 1.0\n" for r in ts_ok.itertuples()))
    for name, frame in (("points.min", minima), ("points.ts", ts_ok)):
        with atomic_path(out / name) as tmp:
            tmp.write_bytes(b"".join(np.asarray(p, "<f8").tobytes() for p in frame["params"]))
