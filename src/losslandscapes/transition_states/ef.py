"""Eigenvector-following (Cerjan & Miller; Wales; Munro & Wales): one trust-radius routine for
minima (no uphill mode) and transition states (uphill along the lowest mode).

Up to ``EXACT_LIMIT`` free parameters every cycle diagonalises the exact Hessian and takes a full
eigenvector-following step inside a trust radius; it converges quadratically near a stationary
point. Above that, transition states use hybrid eigenvector-following: the lowest eigenpair by
Lanczos on Hessian-vector products, an uphill step along it, then L-BFGS in the tangent space
(docs/methods.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from losslandscapes.transition_states.spectra import EXACT_LIMIT, eigh, lowest_eigenpairs
from losslandscapes.optimize.lbfgs import LBFGSSettings, minimise

TRUST0 = 1 / 3  # initial trust radius of a transition-state search, as a fraction of its maximum
REUSE_RATIO = (0.8, 1.25)  # a Hessian serves further steps while actual / predicted loss change is inside


@dataclass
class EFResult:
    x: torch.Tensor  # [P] final point
    f: float  # loss at x
    rms: float  # RMS gradient at x
    eigenvalue: float  # lowest Hessian eigenvalue at x
    vector: torch.Tensor  # [P] its eigenvector
    n_neg: int  # negative Hessian eigenvalues at x
    converged: bool  # rms <= gtol with exactly ``uphill`` negative eigenvalues
    cycles: int  # Hessians diagonalised


def ef_step(b: np.ndarray, F: np.ndarray, uphill: np.ndarray) -> np.ndarray:
    """Eigenvector-following step components for Hessian eigenvalues ``b`` and gradient
    components ``F`` along their eigenvectors: uphill where ``uphill``, downhill elsewhere. Each
    component is a Newton step for a well-resolved mode and at most 1 in size."""
    b = np.where(np.abs(b) < 1e-12, 1e-12, b)
    h = 2 * F / (np.abs(b) * (1 + np.sqrt(1 + 4 * F * F / (b * b))))
    return np.where(uphill, h, -h)


def eigenvector_following(pot, x0: torch.Tensor, uphill: int, gtol: float, max_cycles: int, trust: float,
                          max_trust: float, max_rise: float | None = None, min_trust: float = 1e-6,
                          reuse: int = 0) -> EFResult:
    """Exact-Hessian eigenvector-following from ``x0[P]`` towards a stationary point with
    ``uphill`` (0 or 1) negative Hessian eigenvalues, converged at RMS gradient ``gtol``.

    The trust radius starts at ``trust``; it is halved (not below ``min_trust``) after a step whose
    loss change the quadratic model predicted worse than within a factor of two, and doubled (up
    to ``max_trust``) after a well-predicted step that the radius cut. With ``max_rise`` (minima), a
    step that raises the loss by more than ``max_rise`` is retried at half the radius, so the
    search never leaves the basin uphill. With ``reuse`` > 0, up to that many further steps take
    the last Hessian's eigenpairs with the new gradient, as long as the model predicted each step's
    loss change within ``REUSE_RATIO``: a step then costs one gradient instead of a Hessian and its
    diagonalisation. A returned point's Hessian is always diagonalised there, so its eigenvalues
    verify the result. For ``pot.P <= EXACT_LIMIT``.
    """
    x = x0.detach().clone()
    f, g = pot.value_and_grad(x[None])
    f, g = float(f[0]), g[0]
    up = np.arange(pot.P) < uphill
    cycle = stale = 0  # Hessians diagonalised; steps taken since the last one
    while True:
        rms = float(g.norm() / pot.P**0.5)
        if stale == 0 or rms <= gtol or not np.isfinite(rms):
            b, evecs = eigh(pot.hessian(x))
            cycle += 1
            n_neg = int((b < 0).sum())
            done = rms <= gtol and n_neg == uphill
            if done or not np.isfinite(rms) or cycle >= max_cycles:
                return EFResult(x, f, rms, float(b[0]), evecs[:, 0], n_neg, done, cycle)
        F = (evecs.T @ g).cpu().numpy()
        h = ef_step(b, F, up)
        while True:
            size = float(np.linalg.norm(h))
            hs = h * min(1.0, trust / max(size, 1e-300))
            xt = x + evecs @ torch.as_tensor(hs, dtype=x.dtype, device=x.device)
            ft, gt = pot.value_and_grad(xt[None])
            ft = float(ft[0])
            if max_rise is None or (np.isfinite(ft) and ft - f <= max_rise):
                break
            trust *= 0.5
            if trust < 1e-12:
                return EFResult(x, f, rms, float(b[0]), evecs[:, 0], n_neg, False, cycle)
        predicted = float(F @ hs + 0.5 * (b * hs * hs).sum())
        ratio = (ft - f) / predicted if predicted != 0 else 1.0
        if not 0.5 < ratio < 2:
            trust = max(0.5 * trust, min_trust)
        elif size > trust:
            trust = min(2 * trust, max_trust)
        x, f, g = xt, ft, gt[0]
        stale = stale + 1 if stale < reuse and REUSE_RATIO[0] < ratio < REUSE_RATIO[1] else 0


def _hybrid(pot, x0: torch.Tensor, c) -> EFResult:
    """Hybrid eigenvector-following for a transition state above ``EXACT_LIMIT`` parameters."""
    x = x0.detach().clone()
    tangent = LBFGSSettings(memory=5, max_step=c.max_tangent_step, gtol=c.ts_gtol, max_iter=c.tangent_steps)
    for cycle in range(1, c.hef_iter + 1):
        f, g = pot.value_and_grad(x[None])
        rms = float(g[0].norm() / pot.P**0.5)
        ev, V, n_neg = lowest_eigenpairs(pot, x, k=2)
        lam, v = float(ev[0]), torch.as_tensor(V[:, 0], dtype=x.dtype, device=x.device)
        if (rms < c.ts_gtol and n_neg == 1) or not np.isfinite(rms) or cycle == c.hef_iter:
            return EFResult(x, float(f[0]), rms, lam, v, n_neg, rms < c.ts_gtol and n_neg == 1, cycle)
        F = float(g[0] @ v)
        h = float(np.clip(ef_step(np.array([lam]), np.array([F]), np.array([True]))[0],
                          -c.max_uphill_step, c.max_uphill_step))

        def projected(z, v=v):
            fz, gz = pot.value_and_grad(z)
            return fz, gz - (gz @ v)[:, None] * v[None]

        x = minimise(projected, (x + h * v)[None], tangent, progress_seconds=0).x[0]
    raise ValueError("hef_iter must be at least 1")


def transition_state(pot, x0: torch.Tensor, c) -> EFResult:
    """Refine a transition-state guess ``x0[P]`` with the settings ``c`` (config.Connect): exact
    eigenvector-following (trust radius from a third of ``max_uphill_step`` up to it) up to
    ``EXACT_LIMIT`` parameters, hybrid above."""
    if pot.P > EXACT_LIMIT:
        return _hybrid(pot, x0, c)
    return eigenvector_following(pot, x0, 1, c.ts_gtol, c.hef_iter, TRUST0 * c.max_uphill_step, c.max_uphill_step)
