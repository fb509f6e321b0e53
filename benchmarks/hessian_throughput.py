"""Exact Hessians per second at N = 1000: ``MLPLoss.hessian`` (closed form for one hidden layer)
against ``torch.func.hessian`` of the same loss in the same run.

    python benchmarks/hessian_throughput.py
"""

import numpy as np
import torch
from common import rate, write

from losslandscapes.potentials.mlp import MLPLoss, Potential

torch.set_num_threads(2)
rng = np.random.default_rng(0)
out = {}
for sizes in ((2, 10, 4), (2, 5, 4), (2, 5, 5, 4)):
    pot = MLPLoss(sizes, rng.uniform(0, 2, (1000, sizes[0])), rng.integers(0, sizes[-1], 1000), 1e-4)
    x = torch.as_tensor(rng.normal(size=pot.P))
    base = rate(lambda: Potential.hessian(pot, x))
    ours = rate(lambda: pot.hessian(x))
    out[f"[{','.join(map(str, sizes))},1000]"] = {
        "P": pot.P, "torch_func_hessians_per_s": base, "mlploss_hessians_per_s": ours, "ratio": ours / base,
        "max_abs_difference": float((pot.hessian(x) - Potential.hessian(pot, x)).abs().max())}
write("hessian_throughput", out)
