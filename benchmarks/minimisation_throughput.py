"""Minimisations per second to RMS gradient 1e-9 on [2,10,4,1000,1e-4] with D1-like data:
the batched pool versus scipy L-BFGS-B (and pele's L-BFGS when `pele` is importable), same starts.

    python benchmarks/minimisation_throughput.py [n_starts]
"""

import sys

import numpy as np
import torch
from common import timed, write
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
settings = LBFGSSettings(memory=10, max_step=0.5, gtol=1e-9, max_iter=50_000)
res, t_batch = timed(minimise, pot.value_and_grad, torch.tensor(x0), settings, 0)


def fg(w):
    f, g = pot.value_and_grad(torch.tensor(w[None]))
    return float(f[0]), g[0].numpy()


def scipy_all():
    out = []
    for w in x0:
        r = minimize(fg, w, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 0, "maxiter": 50_000, "maxcor": 10})
        out.append(np.linalg.norm(r.jac) / pot.P**0.5)
    return np.array(out)


rms_scipy, t_scipy = timed(scipy_all)
data = {
    "n_starts": n, "batched_seconds": t_batch, "batched_per_s": n / t_batch,
    "batched_converged": int(res.converged.sum()), "batched_median_iterations": float(res.iterations.median()),
    "scipy_seconds": t_scipy, "scipy_per_s": n / t_scipy, "scipy_reached_rms_1e-9": int((rms_scipy <= 1e-9).sum()),
    "speedup_vs_scipy": t_scipy / t_batch,
}
try:
    import pele  # noqa: F401
    data["pele"] = "installed, but no comparison implemented here"
except ImportError as err:
    data["pele"] = f"skipped: pele not importable ({err})"
write("minimisation_throughput", data)
