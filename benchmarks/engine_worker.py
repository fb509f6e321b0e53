"""One engine measurement in its own process, for ``engine.py``: basin-hopping or connect on one
landscape with whichever ``losslandscapes`` is first on PYTHONPATH (the working tree or the
v0.1.0 baseline). Uses only what both versions have. Prints one JSON line; writes the stationary
points it made to an .npz so that ``engine.py`` can verify them with one reference Hessian.

    python engine_worker.py JSON
    JSON: {task: bh|connect, exp, train, config, threads, chains, steps, max_seconds, pairs, start, points}
"""

import json
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
try:  # the working tree: its worker threads
    from losslandscapes.workers import set_threads

    set_threads(a["threads"])
except ImportError:  # v0.1.0: torch's threads only
    pass

from losslandscapes.config import Connect, Search, load_yaml, resolve  # noqa: E402

try:  # the working tree: packages by concept
    from losslandscapes.landscape import basinhopping, connect
    from losslandscapes.landscape.symmetry import NetworkSymmetry
    from losslandscapes.landscape.system import System

    def build_potential(exp, train, device):
        return System.from_training_set(exp, str(train), device).pot
    from losslandscapes.storage.database import Database
except ImportError:  # the baseline's flat modules
    from losslandscapes import basinhopping, connect  # noqa: E402
    from losslandscapes.database import Database  # noqa: E402
    from losslandscapes.stages import build_potential  # noqa: E402
    from losslandscapes.symmetry import NetworkSymmetry  # noqa: E402


def known(cls, d: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


exp = resolve(load_yaml(a["config"])).experiment(a["exp"])  # this version's own settings
search = known(Search, {**exp.search.__dict__, "chains": a["chains"], "steps": a["steps"],
                        "max_seconds": a.get("max_seconds")})
conn = known(Connect, {**exp.connect.__dict__, "max_pairs": a["pairs"], "grow_pairs": 0, "attempts_per_pair": 2})
pot = build_potential(exp, a["train"], torch.device("cpu"))
counts = {"gradient_rows": 0, "hessians": 0}
grad_fn, hess_fn = pot.value_and_grad, pot.hessian


def counted_grad(x):
    counts["gradient_rows"] += x.shape[0]
    return grad_fn(x)


def counted_hess(x):
    counts["hessians"] += 1
    return hess_fn(x)


pot.value_and_grad, pot.hessian = counted_grad, counted_hess
kernel = getattr(pot, "kernel", None)
if kernel is not None:  # the compiled L-BFGS evaluates inside the kernel: count its evaluations too
    lbfgs = kernel.lbfgs

    def counted_lbfgs(X0, gtol, *args):
        out = lbfgs(X0, gtol, *args)
        counts["gradient_rows"] += int(out[4].sum()) + len(X0)
        return out

    kernel.lbfgs = counted_lbfgs
tmp = Path(tempfile.mkdtemp())


def database(name):
    return Database(tmp / name, {"bench": name}, NetworkSymmetry(exp.sizes, pot.free), search.energy_tol, search.distance_tol)


# warm-up outside the clock: numba compiles or loads its cache, torch sets up its kernels
warm = database("warm.sqlite")
basinhopping.run(pot, warm, known(Search, {**search.__dict__, "chains": 1, "steps": 0}), 1, torch.device("cpu"))
x = torch.as_tensor(warm.minima.x[0]) if warm.minima.ids else torch.zeros(pot.P, dtype=torch.float64)
t0 = time.perf_counter()
for _ in range(20):
    grad_fn(x[None])
t_grad = (time.perf_counter() - t0) / 20
t0 = time.perf_counter()
for _ in range(5):
    hess_fn(x)
t_hess = (time.perf_counter() - t0) / 5
counts.update(gradient_rows=0, hessians=0)

db = database("db.sqlite")
out = {"task": a["task"], "exp": a["exp"], "threads": a["threads"], "seconds_per_gradient": t_grad,
       "seconds_per_hessian": t_hess}
if a["task"] == "bh":
    c0, w0 = time.process_time(), time.perf_counter()
    stats = basinhopping.run(pot, db, search, exp.seed, torch.device("cpu"))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    # completed random starts and steps (a time limit may cut a run); a failed quench reached no verified minimum
    done = len(db.load_chains()) + stats.get("proposed", 0)
    failed = sum(stats.get(k, 0) for k in ("unconverged", "not_minimum", "nonfinite"))
    out.update(quenches=done, quench_outcomes_at_verified_minima=done - failed, stored_minima=len(db.minima.ids),
               symmetry_classes=len(set(db.minima.sym)), lowest_loss=float(min(db.minima.loss, default=np.nan)),
               stats=stats)
    points = {"minima": np.array(db.minima.x)}
else:
    start = np.load(a["start"])
    for loss, xm in zip(start["loss"], start["x"]):
        db.add_minimum(float(loss), xm, 0.0, 0.0, 0, 0)
    db.commit()
    c0, w0 = time.process_time(), time.perf_counter()
    stats = connect.run(pot, db, conn, search)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    ts = db.ts_frame()
    out.update(start_minima=len(start["loss"]), stored_minima=len(db.minima.ids), stored_ts=len(ts),
               connected_to_gmin=stats["connected_to_gmin"], classes=stats["classes"], attempts=stats["pair_attempts"],
               stats=stats)
    points = {"minima": np.array(db.minima.x), "ts": np.stack(ts["params"].to_numpy()) if len(ts) else np.zeros((0, pot.P))}
out.update(cpu_seconds=cpu, wall_seconds=wall, **counts)
np.savez(a["points"], **points)
print(json.dumps(out))
