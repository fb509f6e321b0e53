"""Verified MNIST minima per CPU-second: this tree against a baseline commit, in the same run
(issue 32, item 3).

For each tree (the baseline checked out with ``git worktree`` into a temporary folder, and this
one), a child process (the two side by side) builds the experiment's training set with that tree's code and config
(``standard`` preset), runs basin-hopping with that tree's settings for the experiment but an
equal budget for both (``CHAINS`` chains of ``STEPS`` steps, no coverage stop) on one thread,
and reports the process CPU time of the search (after the compiled kernels have been loaded or
compiled), the verified minima it stored, how many quenches landed on a stored minimum, and
the loss of the minima. Writes ``benchmarks/results/mnist_minima.json``.

    python benchmarks/mnist_minima.py [BASELINE (default 1acfbba)] [EXPERIMENTS (default MNIST-e0,MNIST-e50)]
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import write

ROOT = Path(__file__).resolve().parents[1]
CHAINS, STEPS = 2, 8

CHILD = r"""
import json, sys, tempfile, time
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
tree, exp_id, chains, steps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, str(tree / "src"))
from losslandscapes import workers
from losslandscapes.config import load_yaml, resolve
from losslandscapes.landscape import basinhopping
from losslandscapes.landscape.system import System
from losslandscapes.stages import data as data_stages
from losslandscapes.transition_states.spectra import minimum_spectrum
torch.set_num_threads(1)
workers.set_threads(1)
cfg = resolve({**load_yaml(tree / "config.yaml"), "preset": "standard"})
exp = cfg.experiment(exp_id)
exp = replace(exp, search=replace(exp.search, chains=chains, steps=steps, coverage=None, min_quenches=0))
d = Path(tempfile.mkdtemp())
data_stages.experiment(exp, cfg.datasets[exp.data], None, str(d / "train.parquet"), str(d / "test.parquet"))
system = System.from_training_set(exp, str(d / "train.parquet"), "cpu")
pot = system.pot
x = torch.zeros(1, pot.P, dtype=torch.float64)
from losslandscapes.landscape.quench import lbfgs_settings
from losslandscapes.optimize.lbfgs import minimise_potential
minimise_potential(pot, x, replace(lbfgs_settings(exp.search), max_iter=2))  # compile or load the kernels
minimum_spectrum(pot, x[0] + 0.01)
db = system.database(d / "db.sqlite", {"benchmark": exp_id})
t0 = time.process_time()
stats = basinhopping.run(pot, db, exp.search, exp.seed, system.device)
cpu = time.process_time() - t0
runs = db.quenches_frame()
loss = np.sort(np.asarray(db.minima.loss))
print(json.dumps({"cpu_s": cpu, "minima": int(len(loss)), "quenches": int(len(runs)),
                  "on_stored_minimum": int(stats.get("revisits", 0)), "unconverged": int(stats["unconverged"]),
                  "not_minimum": int(stats["not_minimum"]), "lowest_loss": float(loss[0]),
                  "median_loss": float(np.median(loss)), "step_size": exp.search.step_size,
                  "minima_per_cpu_s": len(loss) / cpu}))
"""


def measure(trees: list, exp_id: str) -> list:
    """The child's record for each tree, the trees side by side (one thread each)."""
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(t), exp_id, str(CHAINS), str(STEPS)],
                              stdout=subprocess.PIPE, text=True) for t in trees]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"{exp_id}: a child failed")
    return [json.loads(o.strip().splitlines()[-1]) for o in outs]


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "1acfbba"
    exps = (sys.argv[2] if len(sys.argv) > 2 else "MNIST-e0,MNIST-e50").split(",")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), base], check=True,
                       capture_output=True)
        try:
            for exp_id in exps:
                b, n = measure([wt, ROOT], exp_id)
                rows.append({"experiment": exp_id, "baseline": b, "this": n,
                             "speedup": n["minima_per_cpu_s"] / b["minima_per_cpu_s"]})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], check=True)
    total = {k: sum(r[k]["minima"] for r in rows) / sum(r[k]["cpu_s"] for r in rows) for k in ("baseline", "this")}
    write("mnist_minima", {"baseline": base, "this": head + " + working tree", "chains": CHAINS, "steps": STEPS,
                           "threads": 1, "experiments": rows, "minima_per_cpu_s": total,
                           "speedup": total["this"] / total["baseline"]})


if __name__ == "__main__":
    main()
