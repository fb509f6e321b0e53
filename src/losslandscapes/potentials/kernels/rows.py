"""Compiled loss, gradient and Hessian-vector products of whole rows (parameter vectors), summed
block by block in a fixed order (``blocks``)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .blocks import _NO_INT, _NO_XB, BLOCK, ERROR_MODEL, _block_grad, _deltas, _forward, _rop

# -- rows and batches ---------------------------------------------------------------------------
@njit(cache=True, error_model=ERROR_MODEL)
def _expand(x, free_index, P_full):
    w = np.zeros(P_full)
    for k in range(free_index.shape[0]):
        w[free_index[k]] = x[k]
    return w


@njit(cache=True, error_model=ERROR_MODEL)
def _scratch(sizes, nb):
    rows = 0
    for s in sizes:
        rows += s
    width = 0
    for s in sizes:
        width = max(width, s)
    return (np.empty((rows, nb)), np.empty((width, nb)), np.empty((width, nb)), np.empty((4, nb)),
            np.empty(nb, np.int64))


@njit(cache=True, error_model=ERROR_MODEL)
def _n_blocks(N):
    return (N + BLOCK - 1) // BLOCK


@njit(cache=True, error_model=ERROR_MODEL)
def _finish(x, ce, gfull, free_index, reg, lam, g):
    """Loss of free parameters ``x`` from the summed cross-entropy and full gradient; writes the
    free gradient into ``g``."""
    f = ce
    for k in range(free_index.shape[0]):
        f += lam * reg[k] * x[k] * x[k]
        g[k] = gfull[free_index[k]] + 2.0 * lam * reg[k] * x[k]
    return f


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def row_value_grad(x, g, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam):
    """Loss of one free-parameter row ``x[P]``; its gradient is written to ``g[P]``. Blocks are
    summed in order, exactly as ``value_grad`` does."""
    P_full = woff[-1] + (sizes[-1] * sizes[-2]) + sizes[-1]
    w = _expand(x, free_index, P_full)
    N = XT.shape[1]
    act, d, e, tmp, sb = _scratch(sizes, BLOCK)
    gfull = np.zeros(P_full)
    gb = np.empty(P_full)
    ce = 0.0
    for k in range(_n_blocks(N)):
        n0 = k * BLOCK
        gb[:] = 0.0
        ce += _block_grad(w, XT, y, n0, min(BLOCK, N - n0), 1.0 / N, sizes, woff, boff, aoff, act, d, e, tmp, sb, gb,
                          cols, XB)
        gfull += gb
    return _finish(x, ce, gfull, free_index, reg, lam, g)


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def value_grad(X, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam):
    """Loss [B] and gradient [B, P] of free-parameter rows ``X[B, P]``."""
    B, P = X.shape
    f, G = np.empty(B), np.empty((B, P))
    for b in range(B):
        f[b] = row_value_grad(X[b], G[b], XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam)
    return f, G


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def hvp(x, V, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam):
    """Hessian-vector products [K, P] at ``x[P]`` along the rows of ``V[K, P]``: each block's
    forward and backward pass once, then the R-operator along every row (the exact Hessian of a
    deep network: the unit vectors, each from its own layer up)."""
    K, P = V.shape
    N = XT.shape[1]
    L = sizes.shape[0] - 1
    P_full = woff[-1] + (sizes[-1] * sizes[-2]) + sizes[-1]
    w = _expand(x, free_index, P_full)
    act, d, e, tmp, sb = _scratch(sizes, BLOCK)
    D, E, dact = np.empty_like(act), np.empty_like(act), np.empty_like(act)
    dd, de = np.empty_like(d), np.empty_like(e)
    Vf = np.empty((K, P_full))
    first = np.full(K, L - 1)  # the lowest layer where a row of V is not zero
    for q in range(K):
        Vf[q] = _expand(V[q], free_index, P_full)
        for layer in range(L - 1, -1, -1):
            ni, no = sizes[layer], sizes[layer + 1]
            for j in range(ni * no):
                if Vf[q, woff[layer] + j] != 0.0:
                    first[q] = layer
            for j in range(no):
                if Vf[q, boff[layer] + j] != 0.0:
                    first[q] = layer
    tot = np.zeros((K, P_full))
    part = np.empty(P_full)
    for k in range(_n_blocks(N)):
        n0, nb = k * BLOCK, min(BLOCK, N - k * BLOCK)
        _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, _NO_INT, _NO_XB)
        _deltas(w, y, n0, nb, 1.0 / N, sizes, woff, aoff, act, D, E)
        for q in range(K):
            part[:] = 0.0
            _rop(w, Vf[q], nb, 1.0 / N, sizes, woff, boff, aoff, act, D, E, dact, dd, de, part, first[q])
            tot[q] += part
    out = np.empty((K, P))
    for q in range(K):
        for j in range(P):
            out[q, j] = tot[q, free_index[j]] + 2.0 * lam * reg[j] * V[q, j]
    return out
