"""Transition-state refinement by eigenvector-following (Cerjan & Miller; Wales; Munro & Wales).

Up to ``EXACT_LIMIT`` free parameters the exact Hessian is cheap: each cycle diagonalises it and
takes an eigenvector-following step (uphill along the lowest mode, downhill along every other),
which converges quadratically. Above that, hybrid eigenvector-following: the lowest eigenpair by
Lanczos on Hessian-vector products, an uphill step along it, then L-BFGS in the tangent space. A
result counts only with RMS gradient below ``ts_gtol`` and exactly one negative Hessian eigenvalue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .hessian import EXACT_LIMIT, ef_step, lowest_eigenpairs
from .optimize import LBFGSSettings, minimise

TRUST0 = 1 / 3  # initial trust radius, as a fraction of max_uphill_step


@dataclass
class SaddleResult:
    x: torch.Tensor  # [P]
    loss: float
    rms: float
    neg_eig: float
    n_neg: int
    vector: torch.Tensor  # [P] eigenvector of the negative eigenvalue
    converged: bool
    cycles: int


def _newton_ef(x, g, evals, evecs, trust):
    """Eigenvector-following step in the full eigenbasis (uphill along the lowest mode, downhill
    along all others) scaled into the trust radius. Returns (new x, predicted loss change, whether
    the step was cut to the radius)."""
    F = (evecs.T @ g).cpu().numpy()
    h = ef_step(evals, F, np.arange(len(evals)) == 0)
    size = float(np.linalg.norm(h))
    if size > trust:
        h = h * (trust / size)
    predicted = float(F @ h + 0.5 * (evals * h * h).sum())
    step = evecs @ torch.as_tensor(h, dtype=x.dtype, device=x.device)
    return x + step, predicted, size > trust


def _hybrid(pot, x, g, c, lam, v, tangent):
    """Uphill step along the lowest eigenvector ``v``, then L-BFGS in the tangent space."""
    F = float(g @ v)
    h = float(np.clip(ef_step(np.array([lam]), np.array([F]), np.array([True]))[0],
                      -c.max_uphill_step, c.max_uphill_step))
    x = x + h * v

    def projected(z):
        fz, gz = pot.value_and_grad(z)
        return fz, gz - (gz @ v)[:, None] * v[None]

    return minimise(projected, x[None], tangent, progress_seconds=0).x[0]


def refine(pot, x0: torch.Tensor, c) -> SaddleResult:
    """Refine a transition-state guess ``x0[P]`` with the settings ``c`` (config.Connect).

    Up to ``EXACT_LIMIT`` free parameters the exact Hessian is diagonalised at every cycle and the
    step is a full eigenvector-following step inside a trust radius (starting at a third of
    ``max_uphill_step``, doubled up to it after a cut step whose loss change the quadratic model
    predicted within a factor of two, halved after a worse prediction); above it, hybrid
    eigenvector-following.
    """
    x = x0.detach().clone()
    P = pot.P
    v_prev, trust, last = None, TRUST0 * c.max_uphill_step, None
    tangent = LBFGSSettings(memory=5, max_step=c.max_tangent_step, gtol=c.ts_gtol, max_iter=c.tangent_steps)
    for cycle in range(1, c.hef_iter + 1):
        f, g = pot.value_and_grad(x[None])
        rms = float(g.norm() / P**0.5)
        if not np.isfinite(rms):
            break
        if P <= EXACT_LIMIT:
            evals, evecs = torch.linalg.eigh(pot.hessian(x))
            evals_np = evals.cpu().numpy()
            n_neg, lam, v = int((evals_np < 0).sum()), float(evals_np[0]), evecs[:, 0]
        else:
            ev, V, n_neg = lowest_eigenpairs(pot, x, k=2)
            lam, v = float(ev[0]), torch.as_tensor(V[:, 0], dtype=x.dtype, device=x.device)
        if v_prev is not None and float(v @ v_prev) < 0:
            v = -v
        v_prev = v
        if rms < c.ts_gtol and n_neg == 1:
            return SaddleResult(x, float(f[0]), rms, lam, n_neg, v, True, cycle)
        if P <= EXACT_LIMIT:
            if last is not None:  # trust radius from how well the quadratic model predicted the step
                f_before, predicted, cut = last
                ratio = (float(f[0]) - f_before) / predicted if predicted != 0 else 1.0
                if not 0.5 < ratio < 2:
                    trust = max(0.5 * trust, 1e-6)
                elif cut:
                    trust = min(2 * trust, c.max_uphill_step)
            x, predicted, cut = _newton_ef(x, g[0], evals_np, evecs, trust)
            last = float(f[0]), predicted, cut
        else:
            x = _hybrid(pot, x, g[0], c, lam, v, tangent)
    f, g = pot.value_and_grad(x[None])
    ev, V, n_neg = lowest_eigenpairs(pot, x, k=1)
    return SaddleResult(x, float(f[0]), float(g.norm() / P**0.5), float(ev[0]),
                        n_neg, torch.as_tensor(V[:, 0], device=x.device), False, c.hef_iter)
