"""Hidden-node permutations and tanh sign flips: alignment and aligned distance.

Permuting the nodes of a hidden layer (rows of its incoming weights and biases, columns of the
next layer's weights) or flipping the sign of one node's incoming weights, bias and outgoing
weights leaves the loss unchanged. Vectors are free-parameter vectors [P] (numpy float64); a
permutation may exchange only nodes whose frozen-weight patterns are identical.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from losslandscapes.potentials.layout import Layout

FORBIDDEN = 1e200
MAX_SWEEPS = 10  # re-matching sweeps over the hidden layers of a deep network, at most


class NetworkSymmetry:
    """Symmetry operations of an MLP: ``network`` is its layer sizes, with boolean ``free`` over the
    full layout or None, or a ``Layout``."""

    def __init__(self, network, free: np.ndarray | None = None):
        self.layout = network if isinstance(network, Layout) else Layout(network, free)
        self.sizes, self.free = self.layout.sizes, self.layout.free
        self._pattern = self._split(self.free.astype(np.float64))  # 1 where free
        self._group = [self._groups(layer) for layer in range(len(self.sizes) - 2)]

    def _split(self, w: np.ndarray) -> list[list[np.ndarray]]:
        """[W [..., out, in], b [..., out]] copies of each layer of ``w[..., P_full]``."""
        return [[W.copy(), b.copy()] for W, b in self.layout.layers(w)]

    def _groups(self, layer: int) -> np.ndarray:
        """Group id per node of hidden layer ``layer``: nodes with identical frozen patterns."""
        W_in, _ = self._pattern[layer]
        W_out, _ = self._pattern[layer + 1]
        keys = [tuple(W_in[j]) + tuple(W_out[:, j]) for j in range(W_in.shape[0])]
        _, ids = np.unique(np.array(keys), axis=0, return_inverse=True)
        return ids.ravel()

    def align(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
        """``b`` permuted and sign-flipped to be closest to ``a`` (``align_many``); and the distance."""
        out, dist = self.align_many(a, np.asarray(b)[None])
        return out[0], float(dist[0])

    def align_many(self, a: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every row of ``B[K, P]`` aligned to ``a[P]`` as by ``align``, side by side: the aligned
        rows [K, P] and their distances [K] from ``a``.

        Hidden layers are matched from the input side, each node by its incoming weights and bias
        (already in the frame of the layer below) and, for the last hidden layer, also by its
        outgoing weights (the output layer is never permuted): an exact symmetry image is undone
        exactly. With two or more hidden layers, sweeps then re-match every hidden layer by its
        incoming and outgoing weights together, the other layers fixed: the best choice for that
        layer, so no sweep lengthens the distance; they stop when nothing changes."""
        K = len(B)
        A, Bl = self._split(self.layout.to_full(a)), self._split(self.layout.to_full(B))
        hidden = range(len(self.sizes) - 2)
        for layer in hidden:
            self._match(A, Bl, layer, outgoing=layer == hidden[-1])
        for _ in range(MAX_SWEEPS if len(hidden) > 1 else 0):
            if not any([self._match(A, Bl, layer, outgoing=True) for layer in hidden]):  # a list: match every layer
                break
        out = self.layout.to_free(np.concatenate([np.concatenate([W.reshape(K, -1), b], 1) for W, b in Bl], 1))
        return out, np.array([np.linalg.norm(np.asarray(a) - o) for o in out])

    def _match(self, A: list, Bl: list, layer: int, outgoing: bool) -> bool:
        """Permute and sign-flip the nodes of hidden ``layer`` in every one of ``Bl``'s K networks
        (``_split`` of [K, P_full]) to be closest to ``A``'s (``_split`` of [P_full]), by incoming
        weights and bias, and outgoing weights if ``outgoing``; True if any node moved or flipped."""
        def node_rows(L, axis):  # each node: its incoming weights and bias [, then its outgoing weights]
            parts = [L[layer][0], L[layer][1][..., None]]
            return np.concatenate(parts + [np.swapaxes(L[layer + 1][0], -1, -2)] * outgoing, axis)

        sa, sb = node_rows(A, 1), node_rows(Bl, 2)  # [n, m], [K, n, m]
        na, nb = (sa * sa).sum(1), (sb * sb).sum(2)
        cross = sa @ sb.transpose(0, 2, 1)  # [K, n, n]
        plus = na[None, :, None] + nb[:, None, :] - 2 * cross
        minus = na[None, :, None] + nb[:, None, :] + 2 * cross
        cost = np.minimum(plus, minus)
        g = self._group[layer]
        cost[:, g[:, None] != g[None, :]] = FORBIDDEN
        perm = np.stack([linear_sum_assignment(c)[1] for c in cost])  # [K, n]
        k, n = np.arange(len(perm))[:, None], np.arange(perm.shape[1])
        sign = np.where(minus[k, n, perm] < plus[k, n, perm], -1.0, 1.0)
        W, b = Bl[layer]
        Bl[layer] = [W[k, perm] * sign[..., None], b[k, perm] * sign]
        Bl[layer + 1][0] = np.take_along_axis(Bl[layer + 1][0], perm[:, None, :], 2) * sign[:, None, :]
        return bool((perm != n).any() or (sign < 0).any())
