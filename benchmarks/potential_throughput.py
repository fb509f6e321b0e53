"""Loss+gradient evaluations per second for batches of parameter vectors, against a plain NumPy
one-vector implementation in the same run (and on CUDA when available).

    python benchmarks/potential_throughput.py
"""

import numpy as np
import torch
from common import rate, write

from potential_throughput_numpy import numpy_value_and_grad

from losslandscapes.potentials.mlp import MLPLoss


torch.set_num_threads(2)
rng = np.random.default_rng(0)
out = {}
for sizes in ((2, 10, 4), (784, 10, 10)):
    X = rng.uniform(0, 1, (1000, sizes[0]))
    y = rng.integers(0, sizes[-1], 1000)
    P = sizes[1] * (sizes[0] + 1) + sizes[2] * (sizes[1] + 1)
    w = rng.normal(size=P) * 0.1
    base = rate(lambda: numpy_value_and_grad(w, X, y, sizes, 1e-4))
    key = f"[{','.join(map(str, sizes))},1000]"
    out[key] = {"numpy_one_vector_evals_per_s": base}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        pot = MLPLoss(sizes, X, y, 1e-4, device=dev)
        for B in (1, 16, 64, 256):
            x = torch.as_tensor(rng.normal(size=(B, P)) * 0.1, device=dev)

            def call():
                f, g = pot.value_and_grad(x)
                if dev == "cuda":
                    torch.cuda.synchronize()

            r = rate(call) * B
            out[key][f"{dev}_B{B}_vector_evals_per_s"] = r
            out[key][f"{dev}_B{B}_ratio_to_numpy"] = r / base
write("potential_throughput", out)
