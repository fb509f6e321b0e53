"""Hidden-node permutations and tanh sign flips: alignment and aligned distance.

Permuting the nodes of a hidden layer (rows of its incoming weights and biases, columns of the
next layer's weights) or flipping the sign of one node's incoming weights, bias and outgoing
weights leaves the loss unchanged. Vectors are free-parameter vectors [P] (numpy float64); a
permutation may exchange only nodes whose frozen-weight patterns are identical.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .layout import Layout

FORBIDDEN = 1e200


class NoSymmetry:
    """Plain Euclidean geometry (for potentials without permutational symmetry)."""

    def align(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
        return np.array(b, dtype=np.float64), float(np.linalg.norm(np.asarray(a) - b))


class NetworkSymmetry:
    """Symmetry operations of an MLP with layer ``sizes`` and boolean ``free`` (full layout)."""

    def __init__(self, sizes, free: np.ndarray | None = None):
        self.layout = Layout(sizes, free)
        self.sizes, self.free = self.layout.sizes, self.layout.free
        self._pattern = self._split(self.free.astype(np.float64))  # 1 where free
        self._group = [self._groups(layer) for layer in range(len(self.sizes) - 2)]

    def _split(self, w: np.ndarray) -> list[list[np.ndarray]]:
        return [[W.copy(), b.copy()] for W, b in self.layout.layers(w)]

    def _full(self, x):
        return self.layout.to_full(x)

    def _free(self, layers):
        return self.layout.to_free(np.concatenate([np.concatenate([W.ravel(), b]) for W, b in layers]))

    def _groups(self, layer: int) -> np.ndarray:
        """Group id per node of hidden layer ``layer``: nodes with identical frozen patterns."""
        W_in, _ = self._pattern[layer]
        W_out, _ = self._pattern[layer + 1]
        keys = [tuple(W_in[j]) + tuple(W_out[:, j]) for j in range(W_in.shape[0])]
        _, ids = np.unique(np.array(keys), axis=0, return_inverse=True)
        return ids.ravel()

    def _apply(self, layers, layer, perm, sign):
        W, b = layers[layer]
        layers[layer] = [W[perm] * sign[:, None], b[perm] * sign]
        layers[layer + 1][0] = layers[layer + 1][0][:, perm] * sign[None, :]

    def align(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
        """``b`` permuted and sign-flipped, layer by layer, to be closest to ``a``; and the distance."""
        A, Bl = self._split(self._full(a)), self._split(self._full(b))
        for layer in range(len(self.sizes) - 2):
            inA = np.column_stack([A[layer][0], A[layer][1]])
            inB = np.column_stack([Bl[layer][0], Bl[layer][1]])
            outA, outB = A[layer + 1][0].T, Bl[layer + 1][0].T
            sa = np.hstack([inA, outA])
            sb = np.hstack([inB, outB])
            na, nb = (sa * sa).sum(1), (sb * sb).sum(1)
            cross = sa @ sb.T
            plus = na[:, None] + nb[None, :] - 2 * cross
            minus = na[:, None] + nb[None, :] + 2 * cross
            cost = np.minimum(plus, minus)
            g = self._group[layer]
            cost[g[:, None] != g[None, :]] = FORBIDDEN
            rows, perm = linear_sum_assignment(cost)
            sign = np.where(minus[rows, perm] < plus[rows, perm], -1.0, 1.0)
            self._apply(Bl, layer, perm, sign)
        out = self._free(Bl)
        return out, float(np.linalg.norm(np.asarray(a) - out))
