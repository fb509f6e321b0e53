"""Doubly-nudged elastic band (Trygubenko & Wales 2004) between two minima.

All images of a band are evaluated as one batch. The band is relaxed by FIRE, which copes with
the non-conservative DNEB force better than L-BFGS without line search did on network losses.
The band's own arithmetic is NumPy on the host (a band is a few dozen rows: torch's per-operation
overhead on such arrays was a third of the relaxation, measured); the potential evaluates on its
device.
"""

from __future__ import annotations

import numpy as np
import torch


def n_images(distance: float, per_unit: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, np.ceil(per_unit * distance))))


def _unit(A: np.ndarray) -> np.ndarray:
    return A / np.maximum(np.sqrt(np.einsum("ij,ij->i", A, A)), 1e-300)[:, None]


def _tangents(X: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Improved tangents (Henkelman & Jonsson 2000) [n, P] of the interior images of a band
    ``X[n+2, P]`` with energies ``E[n+2]``."""
    fwd, bwd = X[2:] - X[1:-1], X[1:-1] - X[:-2]
    e0, e1, e2 = E[:-2], E[1:-1], E[2:]
    up, down = (e2 > e1) & (e1 > e0), (e2 < e1) & (e1 < e0)
    dmax = np.maximum(np.abs(e2 - e1), np.abs(e0 - e1))[:, None]
    dmin = np.minimum(np.abs(e2 - e1), np.abs(e0 - e1))[:, None]
    mixed = np.where((e2 > e0)[:, None], fwd * dmax + bwd * dmin, fwd * dmin + bwd * dmax)
    return _unit(np.where(up[:, None], fwd, np.where(down[:, None], bwd, mixed)))


def _along(A: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Row-wise components of ``A[n, P]`` along the unit rows of ``T[n, P]``, as rows."""
    return np.einsum("ij,ij->i", A, T)[:, None] * T


def dneb_gradient(X: np.ndarray, E: np.ndarray, G: np.ndarray, k: float, climb: bool = False) -> np.ndarray:
    """DNEB gradient [n, P] of the interior images of a band ``X[n+2, P]`` with energies
    ``E[n+2]``, true gradients ``G[n, P]`` of the interior images and spring constant ``k``: the
    true gradient perpendicular to the tangent, the spring force along it, and the part of the
    perpendicular spring force that is perpendicular to the perpendicular gradient (the double
    nudge). With ``climb``, the highest interior image climbs instead (Henkelman, Uberuaga and
    Jonsson 2000): its true gradient with the component along the tangent reversed, no springs,
    so that it converges onto the saddle of the band's path."""
    tau = _tangents(X, E)
    g_perp = G - _along(G, tau)
    fwd, bwd = X[2:] - X[1:-1], X[1:-1] - X[:-2]
    f_par = k * (np.linalg.norm(fwd, axis=1) - np.linalg.norm(bwd, axis=1))[:, None] * tau
    f_spr = k * (fwd - bwd)
    f_spr_perp = f_spr - _along(f_spr, tau)
    f_dneb = f_spr_perp - _along(f_spr_perp, _unit(g_perp))
    out = g_perp - f_par - f_dneb
    if climb:
        i = int(np.argmax(E[1:-1]))
        out[i] = G[i] - 2.0 * np.dot(G[i], tau[i]) * tau[i]
    return out


def relax_band(pot, xa: torch.Tensor, xb: torch.Tensor, n: int, k: float, iters: int, rms_tol: float,
               climb: bool = False, max_step: float = 0.1, dt: float = 0.1,
               dt_max: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Band of ``n`` interior images between ``xa`` and ``xb`` [P], relaxed by FIRE (Bitzek et al.
    2006) on the DNEB gradient (with a climbing image where ``climb``); each image moves at most
    ``max_step`` per iteration.
    Returns (X [n+2, P], E [n+2]) on the potential's device."""
    dev = xa.device
    a, b = xa.detach().cpu().numpy(), xb.detach().cpu().numpy()
    s = np.linspace(0.0, 1.0, n + 2)[:, None]
    ends = pot.value(torch.stack([xa, xb])).cpu().numpy()
    inner = (1 - s[1:-1]) * a + s[1:-1] * b
    v = np.zeros_like(inner)
    alpha, n_pos = 0.1, 0
    for _ in range(iters):
        f, g = pot.value_and_grad(torch.from_numpy(inner).to(dev))
        X = np.concatenate([a[None], inner, b[None]])
        F = -dneb_gradient(X, np.concatenate([ends[:1], f.cpu().numpy(), ends[1:]]), g.cpu().numpy(), k, climb)
        if np.linalg.norm(F) / F.size**0.5 < rms_tol:
            break
        if np.vdot(F, v) > 0:  # FIRE: mix the velocity towards the force, speed up
            v = (1 - alpha) * v + alpha * np.linalg.norm(v) * F / max(np.linalg.norm(F), 1e-300)
            n_pos += 1
            if n_pos > 5:
                dt, alpha = min(dt * 1.1, dt_max), alpha * 0.99
        else:  # uphill: stop, slow down
            v = np.zeros_like(v)
            dt, alpha, n_pos = dt * 0.5, 0.1, 0
        v = v + dt * F
        step = dt * v
        inner = inner + step * np.minimum(max_step / np.maximum(np.linalg.norm(step, axis=1), 1e-300), 1.0)[:, None]
    X = torch.as_tensor(np.concatenate([a[None], inner, b[None]]), device=dev)
    return X, torch.cat([torch.as_tensor(ends[:1], device=dev), pot.value(X[1:-1]), torch.as_tensor(ends[1:], device=dev)])


def climbing_candidates(E: torch.Tensor, limit: int) -> list[int]:
    """Indices of interior local maxima of the band energy, highest first (at most ``limit``)."""
    e = E.cpu().numpy()
    idx = [i for i in range(1, len(e) - 1) if e[i] > e[i - 1] and e[i] >= e[i + 1]]
    return sorted(idx, key=lambda i: -e[i])[:limit]
