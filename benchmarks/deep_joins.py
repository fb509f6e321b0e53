"""How reliably does connect join a deep network's lowest 10 classes (Figure 8)? (issue 31)

For each basin-hopping seed (``default``: the experiment's own, as in the default run), runs the
experiment's basin-hopping into a temporary database, then ``connect`` from its minima once per
band length ``neb_iter`` (first attempts' FIRE iterations; the experiment's own first) and per
``descend_lowest`` (DESCEND: 0 for none; the experiment's own where not given), and records how
many of the database's lowest 10 symmetry classes are joined to its global minimum
(independently of connect's own bookkeeping: ``barriers_to_gmin`` on the exported tables, as
``default_run.py``), descent bands, attempts, classes, CPU-seconds, and how many
transition-state refinements converged (counted by wrapping ``connect.transition_state``), with
the Hessian index at each of
their exact-Hessian cycles (by wrapping ``ef.eigh``): what a refinement stopped at cycle K with
more than m negative eigenvalues would have saved and lost (``stop_rules``). Runs on one thread;
writes ``benchmarks/results/deep_joins[_NAME].json``.

    python benchmarks/deep_joins.py RESULTS_DIR EXP SEEDS NEB_ITERS [NAME [DESCEND]]
    e.g. python benchmarks/deep_joins.py results D1-3HL-N100 default,1,2,3 25,50,100
         python benchmarks/deep_joins.py results D1-3HL-N100 default,1,2,3 25 descend 0,10

RESULTS_DIR holds ``experiments/EXP/train.parquet`` (any run's, or
``snakemake results/experiments/EXP/train.parquet``).
"""

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import lowest_joined, write

from losslandscapes.config import load_yaml, resolve
from losslandscapes.landscape import connect as connect_module
from losslandscapes.transition_states import ef
from losslandscapes.stages.landscape import basinhopping, connect

ROOT = Path(__file__).resolve().parents[1]


def stop_rules(refinements: list) -> list:
    """For (converged, [index per cycle]) of each refinement: converged ones lost and Hessians
    saved if refinements stopped at cycle K while their index was above m."""
    total = sum(len(t) for _, t in refinements)
    rows = []
    for k in (10, 20, 30, 50):
        for m in (2, 3, 5):
            stopped = [(c, t) for c, t in refinements if len(t) > k and t[k] > m]
            rows.append({"cycle": k, "index_above": m, "converged_lost": sum(c for c, _ in stopped),
                         "hessians_saved": sum(len(t) - k - 1 for _, t in stopped) / max(total, 1)})
    return rows


def main(results: str, exp_id: str, seeds: str, neb_iters: str, name: str = "", descend: str = "") -> None:
    torch.set_num_threads(1)
    exp = resolve(load_yaml(ROOT / "config.yaml")).experiment(exp_id)
    train = f"{results}/experiments/{exp_id}/train.parquet"
    refinements = []  # (converged, [Hessian index per cycle]) of each refinement of the current connect run
    refine, eigh = connect_module.transition_state, ef.eigh
    cycles = None  # the refinement under way's indices (None outside refinements: minima's polish)

    def counted(*args):
        nonlocal cycles
        cycles = []
        r = refine(*args)
        refinements.append((bool(r.converged), cycles))
        cycles = None
        return r

    def indexed(H):
        b, v = eigh(H)
        if cycles is not None:
            cycles.append(int((b < 0).sum()))
        return b, v

    connect_module.transition_state, ef.eigh = counted, indexed
    rows = []
    for seed in seeds.split(","):
        e = exp if seed == "default" else replace(exp, seed=int(seed))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            basinhopping(e, train, f"{tmp}/bh.sqlite", f"{tmp}/bh.parquet", f"{tmp}/quenches.parquet", "cpu")
            bh_cpu = time.process_time() - t0
            bh_lowest = float(pd.read_parquet(f"{tmp}/bh.parquet")["loss"].min())
            lows = [int(d) or None for d in descend.split(",")] if descend else [e.connect.descend_lowest]
            for n, low in ((n, low) for n in map(int, neb_iters.split(",")) for low in lows):
                refinements.clear()
                t0 = time.process_time()
                run = f"{tmp}/c{n}_{low}"
                stats = connect(replace(e, connect=replace(e.connect, neb_iter=n, descend_lowest=low)), train,
                                f"{tmp}/bh.parquet", f"{run}.sqlite", f"{run}_m.parquet", f"{run}_t.parquet", "cpu")
                m = pd.read_parquet(f"{run}_m.parquet")
                rows.append({
                    "seed": e.seed, "default_seed": seed == "default", "neb_iter": n, "descend_lowest": low,
                    "lowest_10_joined": lowest_joined(m, pd.read_parquet(f"{run}_t.parquet")),
                    "descent_bands": stats["descent_bands"], "descent_minima": stats["descent_minima"],
                    "attempts": stats["pair_attempts"], "classes": stats["classes"],
                    "refinements": len(refinements), "converged": sum(c for c, _ in refinements),
                    "converged_cycles_median": float(np.median([len(t) for c, t in refinements if c] or [np.nan])),
                    "stop_rules": stop_rules(refinements),
                    "bh_cpu_seconds": bh_cpu, "connect_cpu_seconds": time.process_time() - t0,
                    "bh_lowest_loss": bh_lowest, "lowest_loss": float(m["loss"].min()),
                })
                print(rows[-1], flush=True)
    write(f"deep_joins{'_' + name if name else ''}", {
        "command": " ".join(["python", "benchmarks/deep_joins.py", *sys.argv[1:]]), "experiment": exp_id,
        "max_pairs": exp.connect.max_pairs, "runs": rows})


if __name__ == "__main__":
    main(*sys.argv[1:])
