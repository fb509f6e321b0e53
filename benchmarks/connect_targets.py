"""What does ``connect.target_cycles`` buy? Connect one landscape from a finished default run's
basin-hopping minima with several limits (a very large limit is the behaviour before it) and
record attempts, classes connected to the global minimum and CPU-seconds.
Writes ``benchmarks/results/connect_targets.json``.

    python benchmarks/connect_targets.py RESULTS_DIR [EXP] [LIMIT ...]
    e.g. python benchmarks/connect_targets.py results D1-e10 4 8 1000000
"""

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import write

from losslandscapes.config import load_yaml, resolve
from losslandscapes.stages.landscape import connect

ROOT = Path(__file__).resolve().parents[1]


def main(results: str, exp_id: str = "D1-e10", *limits: str) -> None:
    cfg = resolve(load_yaml(ROOT / "config.yaml"))
    exp = next(e for e in cfg.experiments if e.id == exp_id)
    rows = []
    for limit in map(int, limits or ("4", "8", "1000000")):
        c = replace(exp.connect, target_cycles=limit, grow_pairs=0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            stats = connect(replace(exp, connect=c), f"{results}/experiments/{exp_id}/train.parquet",
                                  f"{results}/landscapes/{exp_id}/bh_minima.parquet", f"{tmp}/db.sqlite",
                                  f"{tmp}/minima.parquet", f"{tmp}/ts.parquet", "cpu")
            rows.append({"target_cycles": limit, "cpu_seconds": time.process_time() - t0,
                         "attempts": stats["pair_attempts"], "connected": stats["connected_to_gmin"],
                         "classes": stats["classes"]})
        print(rows[-1], flush=True)
    write("connect_targets", {"command": " ".join(["python", "benchmarks/connect_targets.py", *sys.argv[1:]]),
                              "experiment": exp_id, "max_pairs": exp.connect.max_pairs, "runs": rows})


if __name__ == "__main__":
    main(*sys.argv[1:])
