"""LJAT3 starts per second: the batched generator versus per-start scipy L-BFGS-B (same starts).

    python benchmarks/ljat3_throughput.py [n_starts] [n_scipy]
"""

import sys

import numpy as np
import torch
from common import timed, write
from scipy.optimize import minimize

from losslandscapes.data import ljat3

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
n_scipy = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
torch.set_num_threads(2)
L = 2 * 3**0.5
settings = ljat3.GeneratorSettings(L=L, n_starts=n, seed=1)
(_, summary), t_batch = timed(ljat3.generate, settings)

x0 = ljat3.random_starts(L, n, 1)[:n_scipy]


def fg(x):
    f, g = ljat3.energy_gradient(torch.tensor(x[None]))
    return float(f[0]), g[0].numpy()


def scipy_all():
    out = []
    for x in x0:
        r = minimize(fg, x, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 0, "maxiter": 100000})
        out.append(r.fun)
    return np.array(out)


(e_scipy, t_scipy) = timed(scipy_all)
batch_rate, scipy_rate = n / t_batch, n_scipy / t_scipy
write("ljat3_throughput", {
    "n_starts_batched": n, "seconds_batched": t_batch, "starts_per_s_batched": batch_rate,
    "n_starts_scipy": n_scipy, "seconds_scipy": t_scipy, "starts_per_s_scipy": scipy_rate,
    "speedup": batch_rate / scipy_rate, "class_fractions": summary["class_fractions"],
    "mean_gradient_calls_batched": summary["mean_iterations"],
    "targets": {"starts_per_s": 10_000, "speedup": 500},
})
