"""Workflow steps on landscapes: basin-hopping, pathway searches, independent draws and the
PATHSAMPLE export (see ``stages.data`` for how steps are written)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from losslandscapes.config import Experiment
from losslandscapes.data import sets
from losslandscapes.storage.artefacts import read_parquet, require_columns, write_parquet

log = logging.getLogger(__name__)

def basinhopping(exp: Experiment, train: str, db_path: str, output: str, quenches: str, device: str) -> dict:
    """Basin-hopping into the database at ``db_path``; export the verified minima (``output``) and
    every quench (``quenches``: chain, step, minimum id or -1, accepted)."""
    from losslandscapes.landscape.basinhopping import run as run_basinhopping
    from losslandscapes.landscape.system import System

    system = System.from_training_set(exp, train, device)
    identity = {k: v for k, v in exp.as_dict().items() if k != "connect"}  # a new pathway budget keeps the minima
    db = system.database(db_path, {"stage": "basinhopping", "experiment": identity})
    stats = run_basinhopping(system.pot, db, exp.search, exp.seed, system.device)
    table, runs = system.minima_table(db), db.quenches_frame()
    db.close()
    log.info("%s: %d minima (%d symmetry-distinct), lowest loss %.10f, %.1f s", exp.id, len(table),
             table["sym_class"].nunique(), table["loss"].min(), stats["seconds"])
    meta = {**system.metadata(stats), "experiment": identity}
    write_parquet(quenches, runs, meta)
    write_parquet(output, table, meta)
    return stats


def connect(exp: Experiment, train: str, start_minima: str, db_path: str, out_minima: str, out_ts: str,
            device: str) -> dict:
    """Transition states connecting basin-hopping's minima (``start_minima``); export minima and TS."""
    from losslandscapes.landscape.connect import run as run_connect
    from losslandscapes.landscape.system import MINIMA_COLUMNS, System

    system = System.from_training_set(exp, train, device)
    start, _ = read_parquet(start_minima)
    require_columns(start, MINIMA_COLUMNS, start_minima)
    digest = hashlib.sha256(np.stack(start["params"].to_numpy()).tobytes()).hexdigest()[:16]
    db = system.database(db_path, {"stage": "connect", "experiment": exp.as_dict(), "start_minima": digest})
    if not db.minima.ids:
        for r in start.itertuples():
            db.add_minimum(r.loss, system.layout.to_free(r.params), r.rms_grad, r.min_eig, r.n_neg_eig, r.found_at_step)
        db.commit()
    stats = run_connect(system.pot, db, exp.connect, exp.search) if exp.transition_states else {"seconds": 0.0}
    minima, ts = system.minima_table(db), system.ts_table(db)
    db.close()
    meta = system.metadata(stats)
    write_parquet(out_minima, minima, meta)
    write_parquet(out_ts, ts, meta)
    return stats


def draws(exp: Experiment, dataset: dict, source: str | None, db_dir: str, output: str, auc: dict,
          device: str) -> None:
    """The later draws of ``exp`` (1 .. ``exp.draws`` - 1), one row each: its own training set and
    mislabelling (``Experiment.draw_seed``, shared with the other experiments on the data set),
    basin-hopping with the budget ``exp.draw_search`` into ``{db_dir}/draw{k}.sqlite`` (resumable),
    and the values of the lowest minimum it found (``tables.gmin_values``), with how many quenches
    and classes that rests on (docs/methods.md §9)."""
    from dataclasses import replace

    from losslandscapes.analysis.metrics import minimum_metrics
    from losslandscapes.analysis.tables import gmin_values
    from losslandscapes.config import derive_seed
    from losslandscapes.landscape.basinhopping import run as run_basinhopping
    from losslandscapes.landscape.system import System

    src, _, names = exp.data_kind.source(exp, dataset, source)
    rows = []
    for k in range(1, exp.draws):
        e = replace(exp, data_seed=exp.draw_seed(k), seed=derive_seed(exp.seed, f"draw{k}"), search=exp.draw_search,
                    draws=1, draw_search=None)
        train, test, summary = sets.build(e, src, names)
        system = System.build(e, np.stack(train["x"].to_numpy()), train["label"].to_numpy(np.int64), device)
        db = system.database(Path(db_dir) / f"draw{k}.sqlite", {"stage": "draw", "experiment": e.as_dict()})
        stats = run_basinhopping(system.pot, db, e.search, e.seed, system.device)
        best = np.asarray(db.minima.x[int(np.argmin(db.minima.loss))])[None]  # [1, P] free layout
        cov = db.quench_coverage()
        db.close()
        values = gmin_values(minimum_metrics(system.on_cpu().pot, best, train, test, e.kind, auc))
        rows.append({"draw": k, "data_seed": e.data_seed, "n_mislabelled": summary["n_mislabelled"], "quenches": cov.n,
                     "classes": cov.classes, "coverage": cov.coverage, "temperature": stats.get("temperature"), **values})
        log.info("%s draw %d: %s", exp.id, k, rows[-1])
    write_parquet(output, pd.DataFrame(rows), {"experiment": exp.as_dict()})


def pathsample(minima_path: str, ts_path: str, outdir: str) -> None:
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
