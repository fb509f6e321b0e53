"""Test systems: the Müller-Brown surface and plain Euclidean geometry (no symmetry)."""

from __future__ import annotations

import numpy as np
import torch

from losslandscapes.potentials.mlp import Potential


class NoSymmetry:
    """Plain Euclidean geometry (for potentials without permutational symmetry)."""

    def align(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
        return np.array(b, dtype=np.float64), float(np.linalg.norm(np.asarray(a) - b))

    def align_many(self, a: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        B = np.array(B, dtype=np.float64)
        return B, np.array([np.linalg.norm(np.asarray(a) - b) for b in B])


class MullerBrown(Potential):
    """The Müller-Brown surface (2-D; three minima, two saddles): a test system for pathways."""

    A = (-200.0, -100.0, -170.0, 15.0)
    a = (-1.0, -1.0, -6.5, 0.7)
    b = (0.0, 0.0, 11.0, 0.6)
    c = (-10.0, -10.0, -6.5, 0.7)
    x0 = (1.0, 0.0, -0.5, -1.0)
    y0 = (0.0, 0.5, 1.5, 1.0)

    def __init__(self, device="cpu"):
        self.P = 2
        self.device = torch.device(device)

    def value(self, q: torch.Tensor) -> torch.Tensor:
        x, y = q[:, 0], q[:, 1]
        total = 0.0
        for A, a, b, c, x0, y0 in zip(self.A, self.a, self.b, self.c, self.x0, self.y0):
            dx, dy = x - x0, y - y0
            total = total + A * torch.exp(a * dx * dx + b * dx * dy + c * dy * dy)
        return total
