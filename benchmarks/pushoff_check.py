"""Do stored transition states join the minima that steepest descent reaches? (issue 19)

Builds a D1-e0 database with whichever ``losslandscapes`` is first on PYTHONPATH (basin-hopping,
then ``connect.run`` with ``pairs`` attempts), then checks every stored transition state
independently of the package: a plain NumPy loss and gradient (``potential_throughput_numpy``),
the negative mode of a central-difference Hessian of that gradient, push-offs of +-0.01 along it,
and the steepest-descent path dx/dt = -g(x) from each, integrated accurately by a stiff adaptive
solver (scipy's LSODA, relative tolerance 1e-8, absolute 1e-10) until the RMS gradient falls
below 1e-9 (no step method of the package's, so the check does not share their failure mode);
each end is assigned to the nearest stored minimum after symmetry alignment. A transition state
disagrees when those two classes differ from its stored ones, or an end lies farther than the
database's identity tolerances (distance 0.1, loss 1e-6) from every stored minimum. The JSON's
``work`` gives the exact Hessians, gradients and CPU-seconds of the connect run by what they were
spent on: bands, the quenches of repeated attempts' band images, refinements (with their
push-offs) by outcome, merges, and per stored transition state. Writes
``benchmarks/results/pushoff_check[_NAME].json``.

    python benchmarks/pushoff_check.py [pairs] [NAME]

It checks the tree it lies in (``common`` puts that tree's ``src`` first): to measure another
commit, copy this file into that tree's ``benchmarks/`` and run it there. It also runs in trees
from before the package's subpackages (7219953, issue 31's baseline).
"""

import os
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from common import write
from potential_throughput_numpy import numpy_value_and_grad
from scipy.integrate import solve_ivp

import losslandscapes
from losslandscapes.config import load_yaml, resolve

try:
    from losslandscapes.landscape import basinhopping, connect
    from losslandscapes.landscape.symmetry import NetworkSymmetry
    from losslandscapes.landscape.system import System
    from losslandscapes.storage.database import Database

    def build_potential(exp, path, device):
        return System.from_training_set(exp, path, device).pot
except ImportError:  # flat modules (7219953)
    from losslandscapes import basinhopping, connect
    from losslandscapes.database import Database
    from losslandscapes.stages import build_potential
    from losslandscapes.symmetry import NetworkSymmetry

pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 80
name = sys.argv[2] if len(sys.argv) > 2 else ""
ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)
exp = resolve(load_yaml(Path(losslandscapes.__file__).parents[2] / "config.yaml")).experiment("D1-e0")  # its own settings
pot = build_potential(exp, str(ROOT / "results/experiments/D1-e0/train.parquet"), torch.device("cpu"))
db = Database(Path(tempfile.mkdtemp()) / "db.sqlite", {"check": 1}, NetworkSymmetry(exp.sizes), 1e-6, 0.1)
basinhopping.run(pot, db, replace(exp.search, chains=16, steps=6), exp.seed, torch.device("cpu"))


@contextmanager
def counting(kernel, db):
    """Exact Hessians, gradients (rows of ``value_grad`` and L-BFGS iterations) and CPU-seconds of
    the connect run inside the block, split by what they were spent on: the bands, each
    transition-state refinement with its two push-off quenches by outcome (``new`` or ``known``
    transition state, ``unconverged`` refinement, ``pushoff_failed``), and the merge (spectra of
    new minima). Needs one thread (the default), so that calls follow one another."""
    n = {"hessians": 0, "gradients": 0}
    orig = {k: getattr(type(kernel), k) for k in ("hessian", "value_grad", "lbfgs")}

    def hessian(self, *a, **k):
        n["hessians"] += 1
        return orig["hessian"](self, *a, **k)

    def value_grad(self, X, *a, **k):
        n["gradients"] += len(X)
        return orig["value_grad"](self, X, *a, **k)

    def lbfgs(self, X0, *a, **k):
        out = orig["lbfgs"](self, X0, *a, **k)
        n["gradients"] += int(out[4].sum()) + len(X0)  # iterations, plus each row's first gradient
        return out

    def snap():
        return {**n, "cpu_s": time.process_time()}

    def diff(a, b):
        return {k: b[k] - a[k] for k in a}

    work = {"band": [], "band_minima": [], "unconverged": [], "pushoff_failed": [], "new": [], "known": [], "merge": []}
    cost, added, stored, depth = {}, [], [], [0]
    saddle, band, merge, store, add_ts = connect._saddle, connect.relax_band, connect.merge, connect.quench.store, db.add_ts
    quench = connect.quench.quench

    def counted_saddle(pot, db, x0, c, search):
        a = snap()
        s = saddle(pot, db, x0, c, search)
        if s is None:
            work["unconverged"].append(diff(a, snap()))
        else:  # its outcome is known once it is merged
            cost[id(s)] = diff(a, snap())
        return s

    def counted_band(*a, **k):
        t = snap()
        out = band(*a, **k)
        work["band"].append(diff(t, snap()))
        return out

    def counted_quench(*a, **k):  # a repeated attempt's band images (push-offs are the saddles')
        if k.get("label", a[5] if len(a) > 5 else "quench") != "quench" or depth[0]:
            return quench(*a, **k)
        depth[0], t = 1, snap()
        try:
            return quench(*a, **k)
        finally:
            depth[0] = 0
            work["band_minima"].append(diff(t, snap()))

    def counted_merge(db, pot, att, stats):
        t, i, j = snap(), len(stored), len(added)
        out = merge(db, pot, att, stats)
        work["merge"].append(diff(t, snap()))
        new, ends = iter(added[j:]), iter(stored[i + hasattr(att, "minima"):])  # after the band minima's
        for s in att.saddles:
            if getattr(s, "known", None) is not None:  # a stored transition state: no push-offs
                work["known"].append(cost.pop(id(s)))
                continue
            ids = next(ends)
            key = "pushoff_failed" if (ids < 0).any() else ("new" if next(new) else "known")
            work[key].append(cost.pop(id(s)))
        return out

    def counted_store(*a, **k):
        ids = store(*a, **k)
        stored.append(ids)
        return ids

    def counted_add_ts(*a, **k):
        i, is_new = add_ts(*a, **k)
        added.append(is_new)
        return i, is_new

    for k, f in (("hessian", hessian), ("value_grad", value_grad), ("lbfgs", lbfgs)):
        setattr(type(kernel), k, f)
    connect._saddle, connect.relax_band, connect.merge, connect.quench.store = counted_saddle, counted_band, counted_merge, counted_store
    connect.quench.quench = counted_quench
    db.add_ts = counted_add_ts
    try:
        yield work
    finally:
        for k, f in orig.items():
            setattr(type(kernel), k, f)
        connect._saddle, connect.relax_band, connect.merge, connect.quench.store = saddle, band, merge, store
        connect.quench.quench = quench
        del db.add_ts


def summary(work: dict, cpu: float) -> dict:
    """Per kind of work: how many, and their Hessians, gradients and CPU-seconds in total and per
    item; ``other_cpu_s``: the connect run's CPU-seconds (``cpu``) outside them (graphs,
    alignment, single-ended searches' starting modes)."""
    if not work:
        return {}
    out = {}
    for key, items in work.items():
        tot = {k: float(sum(i[k] for i in items)) for k in ("hessians", "gradients", "cpu_s")}
        out[key] = {"n": len(items), **tot, **{f"{k}_each": tot[k] / len(items) for k in tot if items}}
    n_ts = out["new"]["n"] + out["known"]["n"]
    out["per_stored_transition_state"] = {k: sum(out[w][k] for w in work) / max(n_ts, 1) for k in ("hessians", "gradients", "cpu_s")}
    out["other_cpu_s"] = cpu - sum(out[w]["cpu_s"] for w in work)
    return out

c0 = time.process_time()
KNOBS = [k for k in ("path_step", "convex_path_step", "newton_radius", "descent_step", "past_peak") if k in {f.name for f in fields(exp.connect)}]
over = {k: float(os.environ[k.upper()]) for k in KNOBS if k.upper() in os.environ}
COUNTABLE = all(hasattr(connect, k) for k in ("_saddle", "relax_band", "merge"))  # older trees: no counts
with counting(pot.kernel, db) if COUNTABLE else nullcontext({}) as work:
    stats = connect.run(pot, db, replace(exp.connect, max_pairs=pairs, grow_pairs=0, **over), exp.search)
cpu = time.process_time() - c0

X, y, lam = pot.X.numpy(), pot.y.numpy(), pot.lam


def fg(w):
    return numpy_value_and_grad(w, X, y, (2, 10, 4), lam)


def negative_mode(w, h=1e-5):
    H = np.array([(fg(w + h * e)[1] - fg(w - h * e)[1]) / (2 * h) for e in np.eye(len(w))])
    evals, evecs = np.linalg.eigh(0.5 * (H + H.T))
    return evals, evecs[:, 0]


unfinished = [0]


def descend(w, t_end=1e9):
    """The end of the steepest-descent path from ``w`` (LSODA on dx/dt = -g)."""
    def converged(t, x):
        return np.sqrt(np.mean(fg(x)[1] ** 2)) - 1e-9
    converged.terminal = True
    sol = solve_ivp(lambda t, x: -fg(x)[1], (0.0, t_end), w, method="LSODA", rtol=1e-8, atol=1e-10,
                    events=converged)
    unfinished[0] += sol.status != 1
    return sol.y[:, -1]


classes = sorted(set(db.minima.sym))
rows = []
for r in db.ts_frame().itertuples():
    evals, v = negative_mode(r.params)
    ends = []
    for sign in (1, -1):
        m = descend(r.params + sign * 0.01 * v)
        d = [db.symmetry.align(m, db.minima.x[cl - 1])[1] for cl in classes]
        j = int(np.argmin(d))
        ends.append((classes[j], float(d[j]), float(fg(m)[0] - db.minima.loss[classes[j] - 1])))
    stored = sorted([db.minimum_class(r.min1), db.minimum_class(r.min2)])
    rows.append({"ts": int(r.id), "n_negative_fd": int((evals < -1e-7).sum()), "stored_classes": stored,
                 "descent_classes": sorted(e[0] for e in ends), "descent_distance": [e[1] for e in ends],
                 "descent_loss_minus_stored": [e[2] for e in ends],
                 # an end farther than the database's identity tolerances from every stored minimum
                 # reached a minimum the database does not hold: a disagreement too
                 "agrees": stored == sorted(e[0] for e in ends) and all(e[1] < 0.1 and abs(e[2]) < 1e-6 for e in ends)})
data = {"command": " ".join(f"{k.upper()}={v}" for k, v in over.items()) + " python benchmarks/pushoff_check.py " + " ".join(sys.argv[1:]),
        "connect_settings": {k: getattr(replace(exp.connect, **over), k) for k in KNOBS}, "package": str(Path(losslandscapes.__file__).parent),
        "pair_attempts": stats["pair_attempts"], "classes": stats["classes"], "connected_to_gmin": stats["connected_to_gmin"],
        "transition_states": len(rows), "connect_cpu_seconds": cpu,
        "cpu_seconds_per_transition_state": cpu / max(len(rows), 1),
        "descents_not_converged": unfinished[0], "work": summary(work, cpu),
        "disagreements": int(sum(not r["agrees"] for r in rows)), "transition_states_checked": rows}
write("pushoff_check" + (f"_{name}" if name else ""), data)
