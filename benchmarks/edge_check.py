"""Do a finished run's stored edges join the minima that the steepest-descent path reaches?

For every transition state in ``RESULTS/work/EXP/connect.sqlite`` (a run made by any tree), the
push-offs of +-``push_off`` along its exact Hessian's negative mode follow the steepest-descent
path with this tree's local-quadratic path follower and polish (``quench.quench`` with the push-off
descent; its ends agree with LSODA on D1-e0 and D1-3HL-N100: ``pushoff_check.py``,
tests/transition_states/test_path.py, docs/performance.md); each end is identified against the
run's own minima. A transition state disagrees when its two ends are not its stored two classes,
or an end is a minimum the run does not hold. Reads a copy of the database, never the run's; the
copy is stamped with this tree's identity of its settings, so a database of another version is
read, not set aside.
Writes ``benchmarks/results/edge_check.json``.

    python benchmarks/edge_check.py RESULTS EXP [EXP ...]
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

from losslandscapes.config import load_yaml, resolve
from losslandscapes.landscape import quench
from losslandscapes.landscape.system import System
from losslandscapes.storage.database import settings_hash
from losslandscapes.transition_states.spectra import eigh

results, exps = Path(sys.argv[1]), sys.argv[2:]
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
    t0, rows = time.process_time(), []
    for r in db.ts_frame().itertuples():
        x = torch.as_tensor(np.array(r.params))
        v = eigh(pot.hessian(x))[1][:, 0]
        ends = []
        for q in quench.quench(db, pot, torch.stack([x + exp.connect.push_off * v, x - exp.connect.push_off * v]),
                               exp.search, descent):
            i = q.known if q.x is None else next((j for j in db.find_minimum(q.f, q.x.numpy()) if j is not None), None)
            ends.append(None if i is None else db.minimum_class(i))  # None: not a stored minimum (or no end)
        stored = sorted([db.minimum_class(r.min1), db.minimum_class(r.min2)])
        rows.append({"ts": int(r.id), "stored_classes": stored, "path_classes": ends,
                     "agrees": None not in ends and sorted(ends) == stored})
    bad = [r for r in rows if not r["agrees"]]
    out["experiments"][exp_id] = {"transition_states": len(rows), "disagreements": len(bad),
                                  "cpu_seconds": time.process_time() - t0, "disagreeing": bad}
    print(exp_id, len(rows), "transition states,", len(bad), "disagree", flush=True)
write("edge_check", out)
