"""The landscape engine against its v0.1.0 baseline and pele, in one run (issue 16).

Every measurement runs in its own process (``engine_worker.py``) with either the working tree's
``src`` or a git worktree of the baseline first on PYTHONPATH (``BASELINE``: commit 9fd0245, main
when issue 16 tagged it ``v0.1.0``; a fresh clone has the commit, not the tag), on the same
training data, budgets and seeds, each version with its own config defaults. Then every stored minimum and
transition state is checked with one reference (the torch backend of the working tree): RMS
gradient and the index of the exact Hessian.

- basin-hopping on D1-e0, D1-h10-k2, D1-2HL-N1000 and MNIST-e0: quench outcomes that end at a
  verified minimum (RMS gradient <= 1e-9, Hessian-verified; a revisit counts) per CPU-second,
  gradient-equivalents per such outcome (a Hessian counts as its measured time over a gradient's),
  and the speed-up from 1 to 2 threads (wall clock). Rates compare both versions on 1 thread, the
  setting v0.1.0's workflow used (on 2 threads its torch kernels spent most CPU time waiting);
- connect on D1-e0 from the same start minima: verified transition states and newly connected
  symmetry classes per CPU-second;
- pele (PELE_PYTHON names a Python with `pip install pele`): its L-BFGS to RMS 1e-9 on the D1-e0
  loss from 32 basin-hopping trial points (perturbed minima), per CPU-second, without any Hessian
  check.

    [PELE_PYTHON=...] python benchmarks/engine.py [--quick] [--only EXP]

Results are written after each landscape (``--only`` reruns one landscape into the same file).
MNIST-e0 runs under a wall-clock limit per version (``max_seconds``): with raw pixels v0.1.0 had
not finished its 8 quenches after 20 minutes. The working tree runs MNIST-e0 with the base config's
8 chains (``BUDGET_CURRENT``), v0.1.0 with 4. Needs the experiments' training data (made with
snakemake if missing) and git.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, write

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "9fd0245"  # v0.1.0
BASE = Path(f"/tmp/losslandscapes-{BASELINE}")
QUICK = "--quick" in sys.argv
# (chains, steps) of basin-hopping per landscape; connect pair attempts on D1-e0
BUDGET = {"D1-e0": (16, 6), "D1-h10-k2": (16, 6), "D1-2HL-N1000": (16, 6), "MNIST-e0": (4, 1)}
# the working tree's MNIST-e0 runs take the base config's 8 chains (v0.1.0's 4 already took 11 min):
# cycles as wide as a default MNIST job's, so that 1 -> 2 threads is measured on its load balance
BUDGET_CURRENT = {**BUDGET, "MNIST-e0": (8, 1)}
MAX_SECONDS = {"MNIST-e0": 300}  # basin-hopping wall-clock limit per run
PAIRS = 30
if QUICK:
    BUDGET, PAIRS = {k: (4, 2) if k != "MNIST-e0" else (2, 0) for k in BUDGET}, 6
    BUDGET_CURRENT = BUDGET
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def prepare():
    targets = [f"results/experiments/{e}/train.parquet" for e in BUDGET]
    if not all((ROOT / t).exists() for t in targets):
        sh("snakemake", "--cores", "2", *targets, cwd=ROOT)
    if not BASE.exists():
        sh("git", "worktree", "add", "--detach", str(BASE), BASELINE, cwd=ROOT)
    return {"baseline": BASE, "current": ROOT}


def worker(tree: Path, **a) -> dict:
    a = {"config": str(tree / "config.yaml"), "train": str(ROOT / f"results/experiments/{a['exp']}/train.parquet"),
         "points": f"/tmp/engine-{tree.name}-{a['task']}-{a['exp']}-{a['threads']}.npz", "pairs": 0, "start": "", **a}
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": str(a["threads"])}
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "engine_worker.py"), json.dumps(a)],
                         check=True, text=True, capture_output=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["points"] = a["points"]
    return res


def reference(exp_id: str):
    from losslandscapes.config import load_yaml, resolve
    from losslandscapes.landscape.system import System

    exp = resolve(load_yaml(ROOT / "config.yaml")).experiment(exp_id)
    pot = System.from_training_set(exp, str(ROOT / f"results/experiments/{exp_id}/train.parquet"), "cpu").pot
    from losslandscapes.potentials.mlp import MLPLoss

    return MLPLoss(pot.sizes, pot.X.numpy(), pot.y.numpy(), pot.lam, pot.free, exp.regularise_biases, backend="torch"), exp


def verify(pot, X: np.ndarray, index: int, gtol: float) -> dict:
    """How many rows of ``X`` have RMS gradient <= gtol and exactly ``index`` negative eigenvalues
    of the exact Hessian (Lanczos above 1000 parameters: the lowest eigenvalues only)."""
    from losslandscapes.transition_states.spectra import lowest_eigenpairs

    ok = 0
    for x in X:
        x = torch.as_tensor(x)
        rms = float(pot.value_and_grad(x[None])[1].norm() / pot.P**0.5)
        ok += rms <= gtol and lowest_eigenpairs(pot, x, k=2)[2] == index
    return {"checked": len(X), "verified": int(ok)}


def rates(r: dict, pot, key: str, index: int, gtol: float) -> dict:
    pts = np.load(r["points"])[key]
    r["reference_check_" + key] = verify(pot, pts, index, gtol) if pot.P <= 1000 or key == "ts" else {"checked": 0}
    ge = r["gradient_rows"] + r["hessians"] * r["seconds_per_hessian"] / r["seconds_per_gradient"]
    r["gradient_equivalents"] = ge
    return r


def main():
    trees = prepare()
    sys.path.insert(0, str(ROOT / "src"))
    name = "engine" + ("_quick" if QUICK else "")
    path = RESULTS / f"{name}.json"
    data = json.loads(path.read_text()) if ONLY and path.exists() else {}
    data.update({"command": "python benchmarks/engine.py" + (" --quick" if QUICK else ""), "budgets": BUDGET,
                 "budgets_current": BUDGET_CURRENT, "max_seconds": MAX_SECONDS, "connect_pairs": PAIRS})
    data.setdefault("landscapes", {})
    for exp_id in BUDGET:
        if ONLY and exp_id != ONLY:
            continue
        pot, exp = reference(exp_id)
        row = {}
        for name_, tree in trees.items():
            chains, steps = (BUDGET_CURRENT if name_ == "current" else BUDGET)[exp_id]
            for threads in ((1, 2) if name_ == "current" else (1,)):
                r = worker(tree, task="bh", exp=exp_id, threads=threads, chains=chains, steps=steps,
                           max_seconds=MAX_SECONDS.get(exp_id))
                r = rates(r, pot, "minima", 0, 1e-9)
                r["verified_minima_per_cpu_second"] = r["quench_outcomes_at_verified_minima"] / r["cpu_seconds"]
                r["verified_minima_per_wall_second"] = r["quench_outcomes_at_verified_minima"] / r["wall_seconds"]
                r["gradient_equivalents_per_minimum"] = r["gradient_equivalents"] / max(r["quench_outcomes_at_verified_minima"], 1)
                row[f"{name_}_{threads}_threads"] = r
                print(exp_id, name_, threads, "threads:", {k: r[k] for k in ("cpu_seconds", "wall_seconds",
                      "verified_minima_per_cpu_second", "gradient_equivalents_per_minimum")}, flush=True)
        cur, base = row["current_1_threads"], row["baseline_1_threads"]
        row["speedup_minima_per_cpu_second"] = cur["verified_minima_per_cpu_second"] / base["verified_minima_per_cpu_second"]
        row["speedup_1_to_2_threads_wall"] = (row["current_2_threads"]["verified_minima_per_wall_second"]
                                              / cur["verified_minima_per_wall_second"])
        data["landscapes"][exp_id] = {"basin_hopping": row}
        if exp_id == "D1-e0":  # connect from the same start minima, both versions
            start = np.load(cur["points"])["minima"]
            loss = pot.value_and_grad(torch.as_tensor(start))[0].numpy()
            np.savez("/tmp/engine-connect-start.npz", x=start, loss=loss)
            crow = {}
            for name_, tree in trees.items():
                for threads in ((1, 2) if name_ == "current" else (1,)):
                    r = worker(tree, task="connect", exp=exp_id, threads=threads, chains=chains, steps=steps,
                               pairs=PAIRS, start="/tmp/engine-connect-start.npz")
                    r = rates(r, pot, "ts", 1, exp.connect.ts_gtol)
                    r["reference_check_minima"] = verify(pot, np.load(r["points"])["minima"], 0, 1e-9)
                    r["verified_ts_per_cpu_second"] = r["reference_check_ts"]["verified"] / r["cpu_seconds"]
                    r["newly_connected_classes_per_cpu_second"] = (r["connected_to_gmin"] - 1) / r["cpu_seconds"]
                    r["verified_ts_per_wall_second"] = r["reference_check_ts"]["verified"] / r["wall_seconds"]
                    crow[f"{name_}_{threads}_threads"] = r
                    print(exp_id, "connect", name_, threads, "threads:", {k: r[k] for k in ("cpu_seconds", "stored_ts",
                          "verified_ts_per_cpu_second", "connected_to_gmin")}, flush=True)
            cur_c, base_c = crow["current_1_threads"], crow["baseline_1_threads"]
            crow["speedup_ts_per_cpu_second"] = cur_c["verified_ts_per_cpu_second"] / base_c["verified_ts_per_cpu_second"]
            crow["speedup_1_to_2_threads_wall"] = (crow["current_2_threads"]["verified_ts_per_wall_second"]
                                                   / cur_c["verified_ts_per_wall_second"])
            data["landscapes"][exp_id]["connect"] = crow
            data["pele"] = pele(pot, start, exp)
            if isinstance(data["pele"], dict):
                data["speedup_vs_pele_minima_per_cpu_second"] = (cur["verified_minima_per_cpu_second"]
                                                                  / data["pele"]["minima_per_cpu_second"])
        write(name, data)


def pele(pot, minima: np.ndarray, exp):
    """pele's L-BFGS (its own environment, never a project dependency) from 32 trial points."""
    py = os.environ.get("PELE_PYTHON")
    if not py:
        return "skipped: set PELE_PYTHON to a Python with `pip install pele`"
    rng = np.random.default_rng(0)
    x0 = minima[rng.integers(0, len(minima), 32)] + rng.uniform(-1, 1, (32, pot.P))
    npz = RESULTS / "engine_pele_starts.npz"
    np.savez(npz, X=pot.X.numpy(), y=pot.y.numpy(), x0=x0, lam=pot.lam, gtol=1e-9)
    proc = subprocess.run([py, str(Path(__file__).parent / "pele_lbfgs.py"), str(npz)], capture_output=True, text=True,
                          cwd=Path(__file__).parent, env={**os.environ, "OMP_NUM_THREADS": "1"})
    npz.unlink()
    if proc.returncode != 0:
        return f"skipped: pele run failed: {proc.stderr.strip()[-300:]}"
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["minima_per_cpu_second"] = res["reached_tol"] / res["cpu_seconds"]
    return res


if __name__ == "__main__":
    main()
