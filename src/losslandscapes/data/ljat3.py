"""LJAT3: three Lennard-Jones atoms with an Axilrod-Teller three-body term (reduced units).

``V = sum_{i<j} 4 (r_ij^-12 - r_ij^-6) + Z (1 + 3 cos t1 cos t2 cos t3) / (r12 r13 r23)^3``.
Geometries are float64 arrays ``x[B, 9]`` (atoms 1, 2, 3, each x, y, z). The data sets label a
random start by the minimum that the package's L-BFGS (or a gradient flow) reaches from it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from losslandscapes.optimize.lbfgs import LBFGSSettings, gradient_flow, minimise

log = logging.getLogger(__name__)

Z_DEFAULT = 2.0
# Reference minima for Z = 2 (docs/methods.md §2); the tests re-derive them independently.
TRIANGLE_R, TRIANGLE_E = 1.168752317363380, -2.185098840268771
LINEAR_R, LINEAR_E = 1.108762894194149, -2.219098169600678
N_CLASSES = 4


def _squared_distances(x):
    a1, a2, a3 = x[:, 0:3], x[:, 3:6], x[:, 6:9]
    d12, d13, d23 = a1 - a2, a1 - a3, a2 - a3
    return (d12 * d12).sum(1), (d13 * d13).sum(1), (d23 * d23).sum(1), (d12, d13, d23)


def energy_gradient(x: torch.Tensor, Z: float = Z_DEFAULT) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy [B] and analytic gradient [B, 9] of LJAT3 geometries ``x[B, 9]``."""
    u, v, w, (d12, d13, d23) = _squared_distances(x)  # r12^2, r13^2, r23^2

    def lj(s):  # 4 (s^-6 - s^-3) and its derivative in s = r^2
        s3 = s**-3
        return 4.0 * (s3 * s3 - s3), 4.0 * (-6.0 * s3 * s3 + 3.0 * s3) / s

    e12, de12 = lj(u)
    e13, de13 = lj(v)
    e23, de23 = lj(w)
    a, b, c = u + v - w, u + w - v, v + w - u  # 2 r r cos(angle) at atoms 1, 2, 3
    T = u * v * w
    T32 = T**-1.5
    T52 = T32 / T
    abc = a * b * c
    e_at = Z * (T32 + 0.375 * abc * T52)
    # d/du etc. of T^-3/2 + 3/8 abc T^-5/2
    du = Z * (-1.5 * T32 / u + 0.375 * ((b * c + a * c - a * b) * T52 - 2.5 * abc * T52 / u))
    dv = Z * (-1.5 * T32 / v + 0.375 * ((b * c - a * c + a * b) * T52 - 2.5 * abc * T52 / v))
    dw = Z * (-1.5 * T32 / w + 0.375 * ((-b * c + a * c + a * b) * T52 - 2.5 * abc * T52 / w))
    gu, gv, gw = (de12 + du)[:, None], (de13 + dv)[:, None], (de23 + dw)[:, None]
    g1 = 2.0 * (gu * d12 + gv * d13)
    g2 = 2.0 * (-gu * d12 + gw * d23)
    g3 = 2.0 * (-gv * d13 - gw * d23)
    return e12 + e13 + e23 + e_at, torch.cat([g1, g2, g3], 1)


def distances(x: np.ndarray) -> np.ndarray:
    """Pair distances ``[r12, r13, r23]`` [B, 3] of geometries ``x[B, 9]``."""
    x = np.asarray(x).reshape(-1, 3, 3)
    return np.stack(
        [np.linalg.norm(x[:, i] - x[:, j], axis=1) for i, j in ((0, 1), (0, 2), (1, 2))], axis=1
    )


def angles_deg(r: np.ndarray) -> np.ndarray:
    """Interior angles [B, 3] (degrees) at atoms 1, 2, 3 from distances ``r[B, 3]``."""
    r12, r13, r23 = r.T
    c1 = (r12**2 + r13**2 - r23**2) / (2 * r12 * r13)
    c2 = (r12**2 + r23**2 - r13**2) / (2 * r12 * r23)
    c3 = (r13**2 + r23**2 - r12**2) / (2 * r13 * r23)
    return np.degrees(np.arccos(np.clip(np.stack([c1, c2, c3], 1), -1.0, 1.0)))


def classify(x: np.ndarray, energy: np.ndarray, Z: float = Z_DEFAULT, e_tol=1e-6, angle_tol=1.0):
    """Class of converged geometries: 0 triangle, k = atom k central in a linear chain, -1 neither.

    The reference energies are those of ``reference_minima(Z)``.
    """
    tri_e, lin_e = reference_minima(Z)["energies"]
    ang = angles_deg(distances(x))
    label = np.full(len(energy), -1, dtype=np.int64)
    tri = (np.abs(energy - tri_e) < e_tol) & np.all(np.abs(ang - 60.0) < angle_tol, axis=1)
    label[tri] = 0
    lin = np.abs(energy - lin_e) < e_tol
    for k in range(3):
        label[lin & (np.abs(ang[:, k] - 180.0) < angle_tol)] = k + 1
    return label


def reference_minima(Z: float) -> dict:
    """Triangle and linear minima for ``Z``; the published Z = 2 values or a 1-D Newton solve."""
    if Z == Z_DEFAULT:
        return {"distances": (TRIANGLE_R, LINEAR_R), "energies": (TRIANGLE_E, LINEAR_E)}
    from scipy.optimize import minimize_scalar

    def tri(r):
        return float(energy_gradient(torch.tensor([triangle(r)]), Z)[0][0])

    def lin(r):
        return float(energy_gradient(torch.tensor([chain(r)]), Z)[0][0])

    rt = minimize_scalar(tri, bounds=(0.8, 2.0), method="bounded", options={"xatol": 1e-12}).x
    rl = minimize_scalar(lin, bounds=(0.8, 2.0), method="bounded", options={"xatol": 1e-12}).x
    return {"distances": (rt, rl), "energies": (tri(rt), lin(rl))}


def triangle(r: float) -> list[float]:
    """Equilateral triangle of side ``r`` as a flat [9] list."""
    return [0, 0, 0, r, 0, 0, r / 2, r * math.sqrt(3) / 2, 0]


def chain(r: float, centre: int = 1) -> list[float]:
    """Linear chain with nearest distance ``r`` and atom ``centre`` (1, 2, 3) in the middle."""
    pos = {centre: 0.0}
    others = [a for a in (1, 2, 3) if a != centre]
    pos[others[0]], pos[others[1]] = -r, r
    return [c for a in (1, 2, 3) for c in (pos[a], 0.0, 0.0)]


@dataclass(frozen=True)
class GeneratorSettings:
    """How a data set is generated and labelled; stored in the data set's metadata."""

    L: float
    n_starts: int
    seed: int
    Z: float = Z_DEFAULT
    labelling: str = "lbfgs"  # or "gradient_flow"
    chunk: int = 50_000
    minimiser: LBFGSSettings = field(default_factory=LBFGSSettings)

    def metadata(self) -> dict:
        return asdict(self)


def random_starts(L: float, n: int, seed: int) -> np.ndarray:
    """``n`` geometries [n, 9], every coordinate uniform on [0, L]."""
    return np.random.default_rng(seed).uniform(0.0, L, size=(n, 9))


def generate(s: GeneratorSettings, device: str = "cpu") -> tuple[dict, dict]:
    """Minimise and label ``s.n_starts`` random starts; returns (columns, summary)."""
    x0 = random_starts(s.L, s.n_starts, s.seed)
    fg = lambda x: energy_gradient(x, s.Z)  # noqa: E731
    parts = []
    for start in range(0, s.n_starts, s.chunk):
        xs = torch.tensor(x0[start : start + s.chunk], device=device)
        if s.labelling == "gradient_flow":
            xs = gradient_flow(fg, xs, rms_switch=1e-4, max_displacement=0.01)
        res = minimise(fg, xs, s.minimiser, label=f"ljat3 starts {start}+")
        parts.append(res)
        log.info("minimised starts %d..%d of %d", start, start + len(xs), s.n_starts)
    x = np.concatenate([p.x.cpu().numpy() for p in parts])
    energy = np.concatenate([p.f.cpu().numpy() for p in parts])
    converged = np.concatenate([p.converged.cpu().numpy() for p in parts])
    iterations = np.concatenate([p.iterations.cpu().numpy() for p in parts])
    label = classify(x, energy, s.Z)
    label[~converged] = -1
    r0 = distances(x0)
    n = s.n_starts
    columns = {
        "r12": r0[:, 0],
        "r13": r0[:, 1],
        "r23": r0[:, 2],
        "energy": energy,
        "label": label,
        "converged": converged,
        "iterations": iterations,
        "split": np.where(np.arange(n) < n // 2, "train", "test"),
    }
    counts = np.bincount(label[label >= 0], minlength=N_CLASSES)
    summary = {
        "n_starts": n,
        "n_unconverged": int((~converged).sum()),
        "n_unclassified": int(((label < 0) & converged).sum()),
        "n_nonfinite_trials": int(sum(p.n_nonfinite for p in parts)),
        "class_counts": counts.tolist(),
        "class_fractions": (counts / max(counts.sum(), 1)).round(6).tolist(),
        "mean_iterations": float(iterations.mean()),
    }
    return columns, summary
