"""Minimisations per second to RMS gradient 1e-9 on [2,10,4,1000,1e-4] with D1 data, same starts:
the pipeline's minimiser (batched L-BFGS to RMS 1e-5, then exact-Hessian eigenvector-following
polish), the batched L-BFGS alone, scipy L-BFGS-B, and pele's L-BFGS when PELE_PYTHON names a
Python with `pip install pele`. Then distinct minima versus basin-hopping steps on the same loss.

    python benchmarks/minimisation_throughput.py [n_starts] [bh_steps]
"""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import RESULTS, timed, write
from scipy.optimize import minimize

from losslandscapes import basinhopping, ljat3
from losslandscapes.config import Search
from losslandscapes.database import Database
from losslandscapes.hessian import polish_minimum
from losslandscapes.optimize import LBFGSSettings, minimise
from losslandscapes.potentials import MLPLoss
from losslandscapes.symmetry import NetworkSymmetry

n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
bh_steps = int(sys.argv[2]) if len(sys.argv) > 2 else 12
GTOL = 1e-9
torch.set_num_threads(2)
cols, _ = ljat3.generate(ljat3.GeneratorSettings(L=2 * 3**0.5, n_starts=4000, seed=5))
X = np.stack([cols["r12"], cols["r13"]], 1)[:1000]
y = cols["label"][:1000]
pot = MLPLoss((2, 10, 4), X, y, 1e-4)
x0 = np.random.default_rng(1).uniform(-1, 1, (n, pot.P))
rms_of = lambda g: float(np.linalg.norm(g) / pot.P**0.5)  # noqa: E731
lbfgs = LBFGSSettings(memory=10, max_step=0.5, gtol=GTOL, max_iter=20_000)


def pipeline():
    """Loss values [n] at RMS <= GTOL (NaN: failed), as basinhopping.settle reaches them."""
    loose = minimise(pot.value_and_grad, torch.tensor(x0), replace(lbfgs, gtol=1e-5), 0)
    polished = [polish_minimum(pot, loose.x[b], GTOL) for b in range(n)]
    f = np.array([p.f if p.converged else np.nan for p in polished])
    rest = [b for b, p in enumerate(polished) if not p.converged]  # not yet in a basin: L-BFGS on
    if rest:
        tight = minimise(pot.value_and_grad, loose.x[rest], lbfgs, 0)
        f[rest] = np.where(tight.converged.numpy(), tight.f.numpy(), np.nan)
    return f, n - len(rest)


def scipy_all():
    def fg(w):
        f, g = pot.value_and_grad(torch.tensor(w[None]))
        return float(f[0]), g[0].numpy()

    return [rms_of(minimize(fg, w, jac=True, method="L-BFGS-B",
                            options={"gtol": GTOL, "maxiter": 20_000, "maxcor": 10}).jac) for w in x0]


(f_pipe, n_polished), t_pipe = timed(pipeline)
res, t_batch = timed(minimise, pot.value_and_grad, torch.tensor(x0), lbfgs, 0)
rms_scipy, t_scipy = timed(scipy_all)
data = {
    "n_starts": n,
    "pipeline_seconds": t_pipe, "pipeline_per_s": n / t_pipe,
    "pipeline_converged": int(np.isfinite(f_pipe).sum()), "pipeline_polished": n_polished,
    "lbfgs_only_seconds": t_batch, "lbfgs_only_per_s": n / t_batch,
    "lbfgs_only_converged": int(res.converged.sum()), "lbfgs_only_median_iterations": float(res.iterations.median()),
    "same_minimum_as_lbfgs_only": int((np.abs(f_pipe - res.f.numpy()) < 1e-10).sum()),
    "scipy_seconds": t_scipy, "scipy_per_s": n / t_scipy, "scipy_reached_rms_1e-9": int(sum(r <= GTOL for r in rms_scipy)),
    "speedup_vs_scipy": t_scipy / t_pipe,
    "speedup_vs_lbfgs_only": t_batch / t_pipe,
}
# pele lives in its own environment (never a project dependency): PELE_PYTHON=/path/to/python
pele_python = os.environ.get("PELE_PYTHON")
if pele_python:
    starts = RESULTS / "minimisation_starts.npz"
    np.savez(starts, X=X, y=y, x0=x0, lam=1e-4, gtol=GTOL)
    proc = subprocess.run([pele_python, str(Path(__file__).parent / "pele_lbfgs.py"), str(starts)],
                          capture_output=True, text=True, cwd=Path(__file__).parent)
    if proc.returncode == 0:
        data["pele"] = json.loads(proc.stdout.strip().splitlines()[-1])
        data["speedup_vs_pele"] = data["pele"]["seconds"] / t_pipe
    else:
        data["pele"] = f"skipped: pele run failed: {proc.stderr.strip()[-300:]}"
else:
    data["pele"] = "skipped: set PELE_PYTHON to a Python with `pip install pele`"

# distinct minima (plain and symmetry-distinct) versus basin-hopping steps on the same loss
search = Search(chains=8, steps=bh_steps)
with tempfile.TemporaryDirectory() as tmp:
    db = Database(Path(tmp) / "db.sqlite", {"bench": 1}, NetworkSymmetry((2, 10, 4)), search.energy_tol, search.distance_tol)
    stats, t_bh = timed(basinhopping.run, pot, db, search, 2020, torch.device("cpu"))
    mins = db.minima_frame()
curve = pd.DataFrame({"step": range(bh_steps + 1)})
curve["plain"] = [int((mins["found_at_step"] <= s).sum()) for s in curve["step"]]
curve["sym"] = [mins.loc[mins["found_at_step"] <= s, "sym_class"].nunique() for s in curve["step"]]
data["basin_hopping"] = {"chains": search.chains, "seconds": t_bh, "lowest_loss": float(mins["loss"].min()),
                         "stats": stats, "minima_vs_step": curve.to_dict("list")}
write("minimisation_throughput", data)
