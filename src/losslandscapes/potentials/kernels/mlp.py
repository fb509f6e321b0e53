"""``MLPKernel``: the compiled kernels bound to one loss (data, labels, layout, regularisation)."""

from __future__ import annotations

import threading

import numpy as np

from losslandscapes import workers
from .blocks import _NO_INT, _NO_XB, BLOCK
from .hessian import coupled_hessian_1hl, hessian_1hl
from .lbfgs import lbfgs_row
from .rows import hvp, value_grad

COMPACT_BELOW = 0.5  # inputs take the compact first layer where fewer than this fraction is non-zero


def compact_inputs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of ``X[N, I]`` that are non-zero in some sample (``cols[U]``) and their values
    block by block, ``XB[blocks, U, BLOCK]`` (zero past the last sample), where fewer than
    ``COMPACT_BELOW`` of the entries are non-zero (MNIST: 613 of 784 pixels used, 19 % of the
    entries non-zero); else two empty arrays. The first layer is then one BLAS product per block
    over the used inputs, forward and back: value and gradient 1.58 -> 0.90 ms on MNIST where a
    compiled loop over the non-zero pixels (CSR) waited on each addition (measured)."""
    if X.size == 0 or (X != 0).mean() >= COMPACT_BELOW:
        return _NO_INT, _NO_XB
    cols = np.flatnonzero(np.any(X != 0, axis=0)).astype(np.int64)
    n_blocks = (len(X) + BLOCK - 1) // BLOCK
    XB = np.zeros((n_blocks * BLOCK, len(cols)))
    XB[: len(X)] = X[:, cols]
    return cols, np.ascontiguousarray(XB.reshape(n_blocks, BLOCK, len(cols)).transpose(0, 2, 1))


class MLPKernel:
    """The compiled kernels bound to one loss: data ``X[N, I]``, labels ``y[N]``, a
    ``layout.Layout``, ``lam`` and the regularised mask ``reg[P]`` (1.0 or 0.0 per free parameter).
    Arrays in and out are NumPy float64."""

    def __init__(self, layout, X: np.ndarray, y: np.ndarray, lam: float, reg: np.ndarray, metric: np.ndarray):
        workers.serial_blas()
        import torch

        torch.set_num_threads(1)  # the job's threads are the workers
        eye = np.eye(len(metric))
        self.used = np.flatnonzero(np.any(metric != eye, axis=1)).astype(np.int64)  # others: unit rows
        self.metric = np.ascontiguousarray(metric[np.ix_(self.used, self.used)], np.float64)
        sizes = np.array(layout.sizes, np.int64)
        self.one_hidden_layer = len(layout.sizes) == 3
        X = np.asarray(X, np.float64)
        self.args = (np.ascontiguousarray(X.T), np.ascontiguousarray(y, np.int64), *compact_inputs(X), sizes,
                     layout.weight_offsets, layout.bias_offsets, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                     layout.free_index, np.ascontiguousarray(reg, np.float64), float(lam))
        self.P, self.P_full = layout.P, layout.P_full
        self._buffer = threading.local()  # per-thread scratch of ``coupled_hessian``
        # first-layer weights from inputs that are zero in every sample: exactly decoupled
        I, H = layout.sizes[:2]
        blank = layout.weight_offsets[0] + (np.arange(H)[:, None] * I + np.flatnonzero(~np.any(X != 0, axis=0))).ravel()
        self.decoupled = np.flatnonzero(np.isin(layout.free_index, blank)).astype(np.int64)
        self.coupled = np.setdiff1d(np.arange(self.P), self.decoupled)  # the others
        self.decoupled_curvature = 2.0 * float(lam) * np.asarray(reg, np.float64)[self.decoupled]  # their Hessian

    def value_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Loss [B] and gradient [B, P] of rows ``X[B, P]``."""
        return value_grad(np.ascontiguousarray(X, np.float64), *self.args)

    def hvp(self, x: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Hessian-vector products [K, P] at ``x[P]`` along the rows of ``V[K, P]``."""
        return hvp(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(V, np.float64), *self.args)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """Exact Hessian [P, P] at ``x[P]`` (closed form for one hidden layer, else ``hvp`` along
        every unit vector, symmetrised)."""
        x = np.ascontiguousarray(x, np.float64)
        if self.one_hidden_layer:
            return hessian_1hl(x, *self.args, np.empty((self.P_full, self.P_full)))
        H = hvp(x, np.eye(self.P), *self.args)
        return 0.5 * (H + H.T)

    def coupled_hessian(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Hc [m, m], coupled [m]) of a one-hidden-layer loss at ``x[P]``: the exact Hessian over the
        free parameters ``coupled`` (ascending), all but ``decoupled`` (whose Hessian rows hold only
        their diagonal, 2 lam reg), upper triangle only (the lower one is not set). Summed in this
        thread's reusable buffer and compacted in place, valid until the thread's next call: MNIST's
        full Hessian is 507 MB, and first touching fresh memory took 1.3 s of its 3.3 s; the
        compaction skips the mirroring and a copy (MNIST: 6,222 of 7,960 parameters kept)."""
        if getattr(self._buffer, "H", None) is None:
            self._buffer.H = np.empty((self.P_full, self.P_full))
        H = coupled_hessian_1hl(np.ascontiguousarray(x, np.float64), *self.args, self._buffer.H, self.coupled)
        return H, self.coupled

    def lbfgs(self, X0: np.ndarray, gtol: np.ndarray, s, precondition: bool) -> tuple:
        """``lbfgs_row`` on every row of ``X0[B, P]`` (tolerances ``gtol[B]``, ``optimize.lbfgs.LBFGSSettings``
        s; with the input metric if ``precondition``), one task per row: (x [B, P], f [B], g [B, P],
        status [B], iterations [B], non-finite trials [B])."""
        metric = self.metric if precondition else np.empty((0, 0))  # (0, 0) also for a unit metric
        B, P = X0.shape
        X, G = np.empty((B, P)), np.empty((B, P))
        if B == 0:
            return X, np.empty(0), G, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
        X0 = np.ascontiguousarray(X0, np.float64)

        def row(b):
            return lbfgs_row(X0[b], float(gtol[b]), s.memory, s.max_step, s.max_rise, s.dguess, s.max_iter,
                             s.max_decrease, s.max_fail, s.past_peak, s.peak_rise, metric, self.used, *self.args, X[b], G[b])

        f, status, iters, nonfinite = (np.array(v) for v in zip(*workers.map_tasks(row, range(B))))
        return X, f.astype(np.float64), G, status.astype(np.int64), iters.astype(np.int64), nonfinite.astype(np.int64)
