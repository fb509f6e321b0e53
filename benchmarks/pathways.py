"""Transition-state searches between pairs of distinct minima of a landscape database, one
double-ended attempt (``connect.attempt_pair``) per pair: success rate (the attempt yields at least
one index-one TS with both sides minimised, new or already stored), joined rate (right after its
attempt the pair's two classes are connected through the TSs stored so far), median seconds per
pair, TS per minute. With PELE_PYTHON naming a Python that has `pele`, pele's LocalConnect runs on the first
``n_pele`` pairs (same loss, same aligned endpoints) and its TSs are checked with our exact Hessian.

    [PELE_PYTHON=...] python benchmarks/pathways.py [results/landscapes/D1-e0] [n_pairs] [n_pele]
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, write
from scipy.sparse.csgraph import connected_components

from losslandscapes import connect
from losslandscapes.artefacts import read_parquet
from losslandscapes.basinhopping import new_stats
from losslandscapes.config import load_yaml, resolve
from losslandscapes.database import Database
from losslandscapes.stages import build_potential, experiment_from_dict
from losslandscapes.symmetry import NetworkSymmetry

land = Path(sys.argv[1] if len(sys.argv) > 1 else "results/landscapes/D1-e0")
n_pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
n_pele = int(sys.argv[3]) if len(sys.argv) > 3 else 10
torch.set_num_threads(2)
minima, meta = read_parquet(land / "minima.parquet")
exp = experiment_from_dict(meta["experiment"])
current = resolve(load_yaml(Path(__file__).resolve().parents[1] / "config.yaml")).experiment(exp.id)  # today's settings
pot = build_potential(exp, f"results/experiments/{exp.id}/train.parquet", torch.device("cpu"))
db = Database(f"/tmp/bench-pathways-{exp.id}.sqlite", {"bench": time.time()}, NetworkSymmetry(exp.sizes, pot.free), 1e-6, 0.1)
for r in minima.drop_duplicates("sym_class").itertuples():
    db.add_minimum(r.loss, pot.to_free(r.params), r.rms_grad, r.min_eig, r.n_neg_eig, 0)
ids = list(db.minima.ids)
rng = np.random.default_rng(0)
pairs = [tuple(rng.choice(ids, 2, replace=False)) for _ in range(n_pairs)]
times, found, new, joined = [], [], [], []
stats = {"hef_unconverged": 0, "pushoff_failed": 0, **new_stats()}
t0 = time.perf_counter()
for a, b in pairs:
    t = time.perf_counter()
    before = len(db.ts.ids)
    found.append(connect.attempt_pair(pot, db, int(a), int(b), current.connect, current.search, stats))
    times.append(time.perf_counter() - t)
    new.append(len(db.ts.ids) - before)
    cls = sorted(set(db.minima.sym))
    pos = {c: i for i, c in enumerate(cls)}
    adj = np.zeros((len(cls), len(cls)), bool)
    for u, v in db.ts_edges():
        adj[pos[u], pos[v]] = adj[pos[v], pos[u]] = True
    comp = connected_components(adj, directed=False)[1]
    joined.append(comp[pos[db.minimum_class(int(a))]] == comp[pos[db.minimum_class(int(b))]])
total = time.perf_counter() - t0
data = {
    "landscape": str(land), "connect_settings": str(current.connect), "pairs": n_pairs,
    "success_rate": float(np.mean([f > 0 for f in found])), "joined_rate": float(np.mean(joined)),
    "median_seconds_per_pair": float(np.median(times)),
    "ts_found": int(sum(found)), "new_ts": int(sum(new)), "ts_per_minute": 60 * sum(found) / total, "stats": stats,
    "every_ts_index_one": bool(all(n == 1 for n in db.ts_frame()["n_neg_eig"])),
}
# pele lives in its own environment (never a project dependency): PELE_PYTHON=/path/to/python
pele_python = os.environ.get("PELE_PYTHON")
if pele_python and exp.sizes == (2, 10, 4) and pot.free.all():
    ends = [(db.minima.x[a - 1], db.symmetry.align(db.minima.x[a - 1], db.minima.x[b - 1])[0]) for a, b in pairs[:n_pele]]
    npz = RESULTS / "pathways_pairs.npz"
    np.savez(npz, X=pot.X.numpy(), y=pot.y.numpy(), lam=pot.lam, xa=np.array([e[0] for e in ends]),
             xb=np.array([e[1] for e in ends]))
    proc = subprocess.run([pele_python, str(Path(__file__).parent / "pele_connect.py"), str(npz)],
                          capture_output=True, text=True, cwd=Path(__file__).parent)
    if proc.returncode == 0:
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        n_neg = [int((torch.linalg.eigvalsh(pot.hessian(torch.tensor(ts))) < 0).sum()) for p in res["pairs"] for ts in p["ts"]]
        pele_t = [p["seconds"] for p in res["pairs"]]
        data["pele"] = {"settings": res["settings"], "pairs": len(pele_t), "median_seconds_per_pair": float(np.median(pele_t)),
                        "success_rate": float(np.mean([len(p["ts"]) > 0 for p in res["pairs"]])),
                        "ts_found": len(n_neg), "ts_index_one_by_exact_hessian": int(sum(n == 1 for n in n_neg))}
        ours = float(np.median(times[:n_pele]))
        data["pele"]["ours_median_seconds_same_pairs"] = ours
        data["speedup_vs_pele_median_seconds_per_pair"] = data["pele"]["median_seconds_per_pair"] / ours
    else:
        data["pele"] = f"skipped: pele run failed: {proc.stderr.strip()[-300:]}"
else:
    data["pele"] = "skipped: set PELE_PYTHON to a Python with `pip install pele` ([2,10,4] fully connected only)"
write("pathways", data)
