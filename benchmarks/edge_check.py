"""Do a finished run's stored edges join the minima that the steepest-descent path reaches?

For every transition state in ``RESULTS/work/EXP/connect.sqlite`` (a run made by any tree), the
push-offs of +-``push_off`` along its exact Hessian's negative mode follow the steepest-descent
path with this tree's local-quadratic path follower and polish (``quench.quench`` with the push-off
descent; its ends agree with LSODA on D1-e0 and D1-3HL-N100: ``pushoff_check.py``,
tests/transition_states/test_path.py, docs/performance.md); each end is identified against the
run's own minima. A transition state disagrees when its two ends are not its stored two classes,
or an end is a minimum the run does not hold. Each row also gives the stored transition state's
Hessian index (negative eigenvalues of the package's closed-form Hessian, which
tests/potentials/test_potentials.py checks against finite differences; a true transition state
has one). The LSODA helper repeats ``pushoff_check.py``'s on purpose: that script must also run
alone in older trees, whose ``common.py`` lacks any shared helper.

With ``--lsoda N`` the check is independent of the package's step methods: N transition states
per landscape, drawn at random (seed 0), and each push-off integrated by LSODA (dx/dt = -g,
relative tolerance 1e-8, absolute 1e-10, until the RMS gradient is below 1e-9), as
``pushoff_check.py`` does on D1-e0 for any network; each end is assigned to the nearest stored
class after symmetry alignment and must lie within the database's identity tolerances of it.
An LSODA end with a negative Hessian eigenvalue (the integration stopped at a saddle, the push-off
lying on its stable manifold, a hidden-unit symmetry subspace on D2) is counted as
``reference_at_saddle``, not judged.

Reads a copy of the database, never the run's; the copy is stamped with this tree's identity of
its settings, so a database of another version is read, not set aside.
Writes ``benchmarks/results/edge_check[_lsoda].json``.

    python benchmarks/edge_check.py RESULTS EXP [EXP ...] [--lsoda N]
"""

import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import write
from scipy.integrate import solve_ivp

from losslandscapes.config import load_yaml, resolve
from losslandscapes.landscape import quench
from losslandscapes.landscape.system import System
from losslandscapes.storage.database import settings_hash
from losslandscapes.transition_states.spectra import eigh

args = sys.argv[1:]
lsoda = int(args.pop(args.index("--lsoda") + 1)) if "--lsoda" in args else None
args = [a for a in args if a != "--lsoda"]
results, exps = Path(args[0]), args[1:]


def lsoda_end(pot, x0: np.ndarray) -> np.ndarray:
    """The end of the steepest-descent path from ``x0[P]`` by LSODA (module docstring)."""
    def grad(x):
        return pot.value_and_grad(torch.from_numpy(x)[None])[1][0].numpy()

    def converged(t, x):
        return np.sqrt(np.mean(grad(x) ** 2)) - 1e-9
    converged.terminal = True
    return solve_ivp(lambda t, x: -grad(x), (0.0, 1e12), x0, method="LSODA", rtol=1e-8, atol=1e-10,
                     events=converged).y[:, -1]


def nearest_class(db, x: np.ndarray, f: float, classes: list) -> dict:
    d = [db.symmetry.align(x, db.minima.x[c - 1])[1] for c in classes]
    j = int(np.argmin(d))
    return {"class": classes[j], "distance": float(d[j]), "loss_minus_stored": f - float(db.minima.loss[classes[j] - 1])}


def compact(row: dict) -> list:
    """[ts, Hessian index, stored classes, LSODA classes, largest end distance, agrees] of a checked row."""
    return [row["ts"], row["hessian_index"], row["stored_classes"], sorted(e["class"] for e in row["lsoda_ends"]),
            max(e["distance"] for e in row["lsoda_ends"]), row["agrees"]]


torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
cfg = resolve({**load_yaml(ROOT / "config.yaml"), "preset": load_yaml(results / "config.yaml").get("preset", "standard")})
out = {"results": str(results.resolve()), "experiments": {}}
for exp_id in exps:
    exp = cfg.experiment(exp_id)
    system = System.from_training_set(exp, str(results / f"experiments/{exp_id}/train.parquet"), "cpu")
    source = results / f"work/{exp_id}/connect.sqlite"
    copy = Path(tempfile.mkdtemp()) / "connect.sqlite"
    shutil.copy(source, copy)
    with sqlite3.connect(copy) as con:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        con.execute("UPDATE meta SET value=? WHERE key='settings_hash'", (settings_hash(json.loads(meta["settings"])),))
    db = system.database(copy, json.loads(meta["settings"]))
    pot, descent = system.pot, quench.descent_settings(exp.search, exp.connect)
    frame = db.ts_frame()
    if lsoda is not None:
        pick = np.random.default_rng(0).choice(len(frame), min(lsoda, len(frame)), replace=False)
        frame = frame.iloc[np.sort(pick)]
    classes = sorted(set(db.minima.sym))
    t0, rows = time.process_time(), []
    for r in frame.itertuples():
        x = torch.as_tensor(np.array(r.params))
        b, V = eigh(pot.hessian(x))
        starts = torch.stack([x + exp.connect.push_off * V[:, 0], x - exp.connect.push_off * V[:, 0]])
        stored = sorted([db.minimum_class(r.min1), db.minimum_class(r.min2)])
        row = {"ts": int(r.id), "hessian_index": int((b < 0).sum()), "stored_classes": stored}
        ends = []
        if lsoda is None:
            for q in quench.quench(db, pot, starts, exp.search, descent):
                i = q.known if q.x is None else next((j for j in db.find_minimum(q.f, q.x.numpy()) if j is not None), None)
                ends.append(None if i is None else db.minimum_class(i))  # None: not a stored minimum (or no end)
            row |= {"path_classes": ends, "agrees": None not in ends and sorted(ends) == stored}
        else:
            for s in starts:
                m = lsoda_end(pot, s.numpy())
                xm = torch.from_numpy(m)
                ends.append(nearest_class(db, m, float(pot.value_and_grad(xm[None])[0][0]), classes)
                            | {"end_hessian_index": int((eigh(pot.hessian(xm))[0] < 0).sum())})
            at_saddle = any(e["end_hessian_index"] > 0 for e in ends)
            row |= {"lsoda_ends": ends, "reference_at_saddle": at_saddle,
                    "agrees": None if at_saddle else (sorted(e["class"] for e in ends) == stored and all(
                        e["distance"] < db.dtol and abs(e["loss_minus_stored"]) < db.etol for e in ends))}
        rows.append(row)
    bad = [r for r in rows if r["agrees"] is False]
    out["experiments"][exp_id] = {"transition_states": len(db.ts.ids),
                                  "checked": len(rows), "disagreements": len(bad),
                                  "reference_at_saddle": sum(r["agrees"] is None for r in rows),
                                  "not_index_one": sum(r["hessian_index"] != 1 for r in rows),
                                  "cpu_seconds": time.process_time() - t0, "disagreeing": bad,
                                  **({"checked_rows": [compact(r) for r in rows]} if lsoda is not None else {})}
    print(exp_id, len(rows), "checked,", len(bad), "disagree,", out["experiments"][exp_id]["not_index_one"],
          "not index one", flush=True)
write("edge_check" + ("_lsoda" if lsoda is not None else ""), out | {"lsoda_sample": lsoda})
