"""The steepest-descent path from a transition state's push-off, by local quadratic approximation.

Each step diagonalises the exact Hessian H = V diag(b) V^T at x and moves along the steepest-descent
path of the quadratic model, which is known in closed form (Page and McIver, J. Chem. Phys. 88, 922
(1988)): with c = V^T g,

    x(t) = x + V [c (exp(-b t) - 1) / b],

for the time t at which the model path's arc length is the step length s. A step whose actual loss
change is not within ``ACCEPT`` of the model's is retried at half the length (the Hessian kept);
after an accepted step s doubles again, up to ``step``, or up to ``convex_step`` where the Hessian
is positive definite (about half the steps of a D1-e0 path; docs/performance.md measures what the
longer steps there change). The path ends where the Hessian is positive definite and the Newton
step -H^-1 g is shorter than ``newton_radius``: the model's minimum lies that close, and the path's
end is the Newton point. On the flat network landscapes the path from a push-off runs 1-20
parameter units past the gradient's peak (D1-e0); the model path follows it where long
quasi-Newton steps, or a switch to them once the gradient has fallen past its peak,
end in another basin (docs/methods.md §6). For ``pot.P <= spectra.EXACT_LIMIT``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from losslandscapes.transition_states.spectra import eigh

ACCEPT = (0.8, 1.25)  # actual / model loss change of an accepted step
MIN_STEP = 1 / 1024  # shortest step, as a fraction of ``step``: taken whatever the model's agreement
TINY = 1e-12  # a model loss change below this is not checked (round-off)
ARC_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 1e6, 241)])  # model times, in units of step / |g|


@dataclass
class PathEnd:
    x: torch.Tensor  # [P] the Newton point at the path's end, or where it stopped
    steps: int  # Hessians diagonalised
    length: float  # arc length walked (parameter units)
    reached: bool  # ended in a Newton region (False: ``max_steps`` used up, or not finite)


def model_step(c: np.ndarray, b: np.ndarray, step: float) -> np.ndarray:
    """Displacement [P] (eigenvector components) along the quadratic model's steepest-descent path
    of arc length ``step`` from a point with gradient components ``c`` along Hessian eigenvectors
    with eigenvalues ``b``; the whole way to the model's minimum if that is nearer (every ``b`` > 0)."""
    t = ARC_GRID * (step / max(float(np.linalg.norm(c)), 1e-300))
    tk = _arc_time(c, b, t, step)
    if tk < 0:  # the model path is shorter than ``step``
        if b[0] > 0:
            return -c / b
        tk = t[-1]
    bt = b * tk
    return c * np.where(np.abs(bt) < 1e-8, -tk, np.expm1(-bt) / np.where(b == 0, 1.0, b))


@njit(cache=True, error_model="numpy")
def _arc_time(c, b, t, step):
    """The model time at which the model path's arc length (trapezoid rule on the times ``t[K]``,
    the speed |c exp(-b t)|) reaches ``step``, interpolated linearly; the last finite time where
    the speed overflows first; -1 where the whole grid is shorter. Stops at the first such time:
    most steps end about 100 points into the 242."""
    arc = prev = 0.0
    for i in range(t.shape[0]):
        speed = 0.0
        for j in range(c.shape[0]):
            e = c[j] * np.exp(-b[j] * t[i])
            speed += e * e
        speed = np.sqrt(speed)
        if i > 0:
            nxt = arc + 0.5 * (speed + prev) * (t[i] - t[i - 1])
            if not np.isfinite(nxt):
                return t[i - 1]
            if nxt >= step:
                return t[i - 1] + (t[i] - t[i - 1]) * (step - arc) / (nxt - arc)
            arc = nxt
        prev = speed
    return -1.0


def follow(pot, x0: torch.Tensor, step: float, newton_radius: float, max_steps: int,
           convex_step: float | None = None) -> PathEnd:
    """Follow the steepest-descent path from ``x0[P]`` in model steps of arc length ``step``, and
    up to ``convex_step`` (default ``step``) where the Hessian is positive definite, until a Newton
    region (module docstring); at most ``max_steps`` Hessians."""
    x = x0.detach().clone()
    f, g = _value_grad(pot, x)
    s, length = step, 0.0
    for k in range(1, max_steps + 1):
        b, V = eigh(pot.hessian(x))
        c = (V.T @ g).cpu().numpy()
        if not (np.isfinite(c).all() and np.isfinite(b).all()):
            return PathEnd(x, k, length, False)
        if b[0] > 0 and np.linalg.norm(c / b) < newton_radius:
            return PathEnd(x - V @ torch.as_tensor(c / b, dtype=x.dtype, device=x.device), k, length, True)
        s = min(s, convex_step if convex_step is not None and b[0] > 0 else step)
        while True:
            h = model_step(c, b, s)
            xt = x + V @ torch.as_tensor(h, dtype=x.dtype, device=x.device)
            ft, gt = _value_grad(pot, xt)
            model = float(c @ h + 0.5 * (b * h * h).sum())
            if np.isfinite(ft) and (abs(model) < TINY or ACCEPT[0] < (ft - f) / model < ACCEPT[1] or s <= MIN_STEP * step):
                break
            s *= 0.5
        x, f, g = xt, ft, gt
        length += float(np.linalg.norm(h))
        s *= 2  # capped at the next point
    return PathEnd(x, max_steps, length, False)


def _value_grad(pot, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    f, g = pot.value_and_grad(x[None])
    return float(f[0]), g[0]
