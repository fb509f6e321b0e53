"""pele's LocalConnect (DNEB + transition-state search + push-offs: one double-ended attempt, as
``connect.attempt_pair``) on the same [2,10,4] loss and pairs, with settings tuned for NN losses
(run with a Python that has `pele`; NumPy only). Usage: PYTHON pele_connect.py pairs.npz -> JSON
on stdout: seconds per pair and the transition-state coordinates pele accepted."""

import json
import sys
import time

import numpy as np
from pele.landscape.local_connect import LocalConnect
from pele.optimize import lbfgs_cpp

from pele_loss import Loss


class Minimum:
    def __init__(self, i, coords):
        self._id, self.coords = i, coords

    def id(self):
        return self._id


d = np.load(sys.argv[1])
pot = Loss(d["X"], d["y"], float(d["lam"]))
quench = lambda x: lbfgs_cpp(x, pot, tol=1e-9, M=10, maxstep=0.5, nsteps=20_000)  # noqa: E731
settings = dict(
    tsSearchParams=dict(tol=1e-5, nsteps=300, max_uphill_step=0.3, hessian_diagonalization=True,
                        orthogZeroEigs=None),  # no rigid-body modes
    NEBparams=dict(k=1.0, image_density=10.0, max_images=20, iter_density=10.0, NEBquenchParams=dict(tol=1e-5)),
    pushoff_params=dict(quench=quench),
)
out = []
for i, (xa, xb) in enumerate(zip(d["xa"], d["xb"])):
    t0 = time.perf_counter()
    lc = LocalConnect(pot, lambda a, b: (float(np.linalg.norm(a - b)), a, b), verbosity=0, **settings)
    res = lc.connect(Minimum(2 * i, xa.copy()), Minimum(2 * i + 1, xb.copy()))
    out.append({"seconds": time.perf_counter() - t0,
                "ts": [ts.coords.tolist() for ts, _, _ in res.new_transition_states]})
print(json.dumps({"settings": repr(settings["tsSearchParams"]) + repr(settings["NEBparams"]), "pairs": out}))
