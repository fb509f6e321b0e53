"""Doubly-nudged elastic band (Trygubenko & Wales 2004) between two minima.

All images of a band are evaluated as one batch. The band is relaxed by FIRE, which copes with
the non-conservative DNEB force better than L-BFGS without line search did on network losses.
"""

from __future__ import annotations

import numpy as np
import torch



def n_images(distance: float, per_unit: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, np.ceil(per_unit * distance))))


def _tangents(X: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """Improved tangents (Henkelman & Jonsson 2000) of interior images; X [n+2, P], E [n+2]."""
    fwd, bwd = X[2:] - X[1:-1], X[1:-1] - X[:-2]
    e0, e1, e2 = E[:-2], E[1:-1], E[2:]
    up, down = (e2 > e1) & (e1 > e0), (e2 < e1) & (e1 < e0)
    dmax = torch.maximum((e2 - e1).abs(), (e0 - e1).abs())
    dmin = torch.minimum((e2 - e1).abs(), (e0 - e1).abs())
    mixed = torch.where(
        (e2 > e0)[:, None], fwd * dmax[:, None] + bwd * dmin[:, None], fwd * dmin[:, None] + bwd * dmax[:, None]
    )
    t = torch.where(up[:, None], fwd, torch.where(down[:, None], bwd, mixed))
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-300)


def dneb_gradient(X, E, G, k: float) -> torch.Tensor:
    """DNEB gradient [n, P] of the interior images from positions X, energies E [n+2] and true
    gradients G [n, P] of the interior images."""
    tau = _tangents(X, E)
    g_perp = G - (G * tau).sum(1, keepdim=True) * tau
    fwd, bwd = X[2:] - X[1:-1], X[1:-1] - X[:-2]
    f_par = k * (fwd.norm(dim=1) - bwd.norm(dim=1))[:, None] * tau
    f_spr = k * (fwd - bwd)
    f_spr_perp = f_spr - (f_spr * tau).sum(1, keepdim=True) * tau
    gh = g_perp / g_perp.norm(dim=1, keepdim=True).clamp_min(1e-300)
    f_dneb = f_spr_perp - (f_spr_perp * gh).sum(1, keepdim=True) * gh
    return g_perp - f_par - f_dneb


def relax_band(pot, xa: torch.Tensor, xb: torch.Tensor, n: int, k: float, iters: int, rms_tol: float,
               max_step: float = 0.1, dt: float = 0.1, dt_max: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Band of ``n`` interior images between ``xa`` and ``xb`` [P], relaxed by FIRE (Bitzek et al.
    2006) on the DNEB gradient; each image moves at most ``max_step`` per iteration.
    Returns (X [n+2, P], E [n+2])."""
    s = torch.linspace(0, 1, n + 2, dtype=xa.dtype, device=xa.device)[:, None]
    X = (1 - s) * xa + s * xb
    ends = pot.value(torch.stack([xa, xb]))
    inner = X[1:-1].clone()
    v = torch.zeros_like(inner)
    alpha, n_pos = 0.1, 0
    for _ in range(iters):
        f, g = pot.value_and_grad(inner)
        X = torch.cat([xa[None], inner, xb[None]])
        E = torch.cat([ends[:1], f, ends[1:]])
        F = -dneb_gradient(X, E, g, k)
        if float(F.norm() / F.numel() ** 0.5) < rms_tol:
            break
        power = float((F * v).sum())
        if power > 0:
            fn, vn = F.norm(), v.norm()
            v = (1 - alpha) * v + alpha * vn * F / fn.clamp_min(1e-300)
            n_pos += 1
            if n_pos > 5:
                dt, alpha = min(dt * 1.1, dt_max), alpha * 0.99
        else:
            v.zero_()
            dt, alpha, n_pos = dt * 0.5, 0.1, 0
        v = v + dt * F
        step = dt * v
        step = step * (max_step / step.norm(dim=1, keepdim=True).clamp_min(1e-300)).clamp(max=1.0)
        inner = inner + step
    f = pot.value(inner)
    return torch.cat([xa[None], inner, xb[None]]), torch.cat([ends[:1], f, ends[1:]])


def climbing_candidates(E: torch.Tensor, limit: int) -> list[int]:
    """Indices of interior local maxima of the band energy, highest first (at most ``limit``)."""
    e = E.cpu().numpy()
    idx = [i for i in range(1, len(e) - 1) if e[i] > e[i - 1] and e[i] >= e[i + 1]]
    return sorted(idx, key=lambda i: -e[i])[:limit]
