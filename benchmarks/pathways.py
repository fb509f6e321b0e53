"""Transition-state searches between pairs of distinct minima of a landscape database:
success rate (a new or known TS joining the pair's classes or reaching new minima counts as a
connection attempt that produced a TS), median seconds per pair, TS per minute.

    python benchmarks/pathways.py [results/landscapes/D1-e0] [n_pairs]
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import write

from losslandscapes import connect
from losslandscapes.artefacts import read_parquet
from losslandscapes.basinhopping import new_stats
from losslandscapes.database import Database
from losslandscapes.stages import build_potential, experiment_from_dict
from losslandscapes.symmetry import NetworkSymmetry

land = Path(sys.argv[1] if len(sys.argv) > 1 else "results/landscapes/D1-e0")
n_pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
torch.set_num_threads(2)
minima, meta = read_parquet(land / "minima.parquet")
exp = experiment_from_dict(meta["experiment"])
pot = build_potential(exp, f"results/experiments/{exp.id}/train.parquet", torch.device("cpu"))
db = Database(f"/tmp/bench-pathways-{exp.id}.sqlite", {"bench": time.time()}, NetworkSymmetry(exp.sizes, pot.free), 1e-6, 0.1)
for r in minima.drop_duplicates("sym_class").itertuples():
    db.add_minimum(r.loss, pot.to_free(r.params), r.rms_grad, r.min_eig, r.n_neg_eig, 0)
ids = list(db.minima.ids)
rng = np.random.default_rng(0)
pairs = [tuple(rng.choice(ids, 2, replace=False)) for _ in range(n_pairs)]
times, found = [], []
stats = {"hef_unconverged": 0, "pushoff_failed": 0, **new_stats()}
t0 = time.perf_counter()
for a, b in pairs:
    t = time.perf_counter()
    before = len(db.ts.ids)
    connect.attempt_pair(pot, db, int(a), int(b), exp.connect, exp.search, stats)
    times.append(time.perf_counter() - t)
    found.append(len(db.ts.ids) - before)
total = time.perf_counter() - t0
write("pathways", {
    "landscape": str(land), "pairs": n_pairs, "pairs_with_new_ts": int(sum(f > 0 for f in found)),
    "success_rate": float(np.mean([f > 0 for f in found])), "median_seconds_per_pair": float(np.median(times)),
    "ts_found": int(sum(found)), "ts_per_minute": 60 * sum(found) / total, "stats": stats,
    "every_ts_index_one": bool(all(n == 1 for n in db.ts_frame()["n_neg_eig"])),
})
