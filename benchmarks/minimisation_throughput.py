"""Minimisations per second to RMS gradient 1e-9 on [2,10,4,1000,1e-4] with D1-like data:
the batched pool versus scipy L-BFGS-B (and pele's L-BFGS when `pele` is importable), same starts.

    python benchmarks/minimisation_throughput.py [n_starts]
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, timed, write
from scipy.optimize import minimize

from losslandscapes import ljat3
from losslandscapes.optimize import LBFGSSettings, minimise
from losslandscapes.potentials import MLPLoss

n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
torch.set_num_threads(2)
cols, _ = ljat3.generate(ljat3.GeneratorSettings(L=2 * 3**0.5, n_starts=4000, seed=5))
X = np.stack([cols["r12"], cols["r13"]], 1)[:1000]
y = cols["label"][:1000]
pot = MLPLoss((2, 10, 4), X, y, 1e-4)
x0 = np.random.default_rng(1).uniform(-1, 1, (n, pot.P))
settings = LBFGSSettings(memory=10, max_step=0.5, gtol=1e-9, max_iter=20_000)
res, t_batch = timed(minimise, pot.value_and_grad, torch.tensor(x0), settings, 0)


def fg(w):
    f, g = pot.value_and_grad(torch.tensor(w[None]))
    return float(f[0]), g[0].numpy()


def scipy_all():
    out = []
    for w in x0:
        r = minimize(fg, w, jac=True, method="L-BFGS-B", options={"gtol": 1e-9, "maxiter": 20_000, "maxcor": 10})
        out.append(np.linalg.norm(r.jac) / pot.P**0.5)
    return np.array(out)


rms_scipy, t_scipy = timed(scipy_all)
data = {
    "n_starts": n, "batched_seconds": t_batch, "batched_per_s": n / t_batch,
    "batched_converged": int(res.converged.sum()), "batched_median_iterations": float(res.iterations.median()),
    "scipy_seconds": t_scipy, "scipy_per_s": n / t_scipy, "scipy_reached_rms_1e-9": int((rms_scipy <= 1e-9).sum()),
    "speedup_vs_scipy": t_scipy / t_batch,
}
# pele lives in its own environment (never a project dependency): PELE_PYTHON=/path/to/python
pele_python = os.environ.get("PELE_PYTHON")
if pele_python:
    starts = RESULTS / "minimisation_starts.npz"
    np.savez(starts, X=X, y=y, x0=x0, lam=1e-4, gtol=1e-9)
    proc = subprocess.run([pele_python, str(Path(__file__).parent / "pele_lbfgs.py"), str(starts)],
                          capture_output=True, text=True, cwd=Path(__file__).parent)
    if proc.returncode == 0:
        data["pele"] = json.loads(proc.stdout.strip().splitlines()[-1])
        data["speedup_vs_pele"] = data["pele"]["seconds"] / t_batch
    else:
        data["pele"] = f"skipped: pele run failed: {proc.stderr.strip()[-300:]}"
else:
    data["pele"] = "skipped: set PELE_PYTHON to a Python with `pip install pele`"
write("minimisation_throughput", data)
