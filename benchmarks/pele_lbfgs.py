"""pele's C++ L-BFGS on the same [2,10,4] loss and starts (run with a Python that has `pele`;
NumPy only, no project imports). Usage: PYTHON pele_lbfgs.py starts.npz -> JSON on stdout."""

import json
import sys
import time

import numpy as np
from pele.optimize import lbfgs_cpp

from pele_loss import Loss


d = np.load(sys.argv[1])
pot = Loss(d["X"], d["y"], float(d["lam"]))
t0, c0 = time.perf_counter(), time.process_time()
rms = []
for w in d["x0"]:
    r = lbfgs_cpp(w.copy(), pot, tol=float(d["gtol"]), M=10, maxstep=0.5, nsteps=20_000)
    rms.append(float(r.rms))
t, c = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": t, "cpu_seconds": c, "per_s": len(d["x0"]) / t,
                  "reached_tol": int(sum(x <= float(d["gtol"]) for x in rms))}))
