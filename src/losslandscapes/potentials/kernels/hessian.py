"""Compiled exact Hessian of a one-hidden-layer loss in closed form."""

from __future__ import annotations

import numpy as np
from numba import njit

from .blocks import _NO_FLOAT, _NO_INT, BLOCK, ERROR_MODEL, FASTMATH, _forward
from .rows import _expand, _n_blocks, _scratch

@njit(cache=True, error_model=ERROR_MODEL, fastmath=FASTMATH)
def _block_hessian_1hl(w, XT, y, n0, nb, inv_n, sizes, woff, boff, aoff, act, tmp, sb, Hb, Q):
    """Adds the block's exact cross-entropy Hessian of a one-hidden-layer network to the upper
    triangle of ``Hb[P_full, P_full]`` in closed form (layer 1, then layer 2 in the layout), except
    the first-layer block: its per-sample coefficients of u_a u_b go to the block's columns of
    ``Q[H * H, N]`` (``hessian_1hl`` sums them over all samples at once). With u = [x, 1],
    h~ = [h, 1], s = 1 - h^2, r = (p - onehot)/N and A = (diag p - p p^T)/N per sample:
      d2/dW1[j,a] dW1[k,b] = sum_n ((W2^T A W2)_jk s_j s_k + [j = k] (r W2)_j (-2 h_j s_j)) u_a u_b
      d2/dW1[j,a] dW2[c,k] = sum_n (A W2)_cj s_j u_a h~_k + [k = j] r_c s_j u_a
      d2/dW2[c,k] dW2[d,l] = sum_n A_cd h~_k h~_l
    (biases are the entries with a = I or k = H)."""
    _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, _NO_INT, _NO_INT, _NO_FLOAT)
    I, H, C = sizes[0], sizes[1], sizes[2]
    w1, b1, w2, b2 = woff[0], boff[0], woff[1], boff[1]
    u = np.ones((I + 1, nb))
    u[:I] = act[:I, :nb]
    ht = np.ones((H + 1, nb))
    ht[:H] = act[I: I + H, :nb]
    s = 1.0 - ht[:H] * ht[:H]
    p = act[I + H: I + H + C, :nb]
    r = p * inv_n
    for n in range(nb):
        r[y[n0 + n], n] -= inv_n
    A = np.empty((C, C, nb))
    for c in range(C):
        for dd in range(C):
            for n in range(nb):
                A[c, dd, n] = -p[c, n] * p[dd, n] * inv_n
        for n in range(nb):
            A[c, c, n] += p[c, n] * inv_n
    AW = np.zeros((C, H, nb))
    for c in range(C):
        for dd in range(C):
            for j in range(H):
                wv = w[w2 + dd * H + j]
                for n in range(nb):
                    AW[c, j, n] += A[c, dd, n] * wv
    rW = np.zeros((H, nb))
    for c in range(C):
        for j in range(H):
            wv = w[w2 + c * H + j]
            for n in range(nb):
                rW[j, n] += r[c, n] * wv
    for j in range(H):  # Q[(j, k), n]: the first-layer coefficient of u_a u_b
        for k in range(H):
            row = j * H + k
            Q[row, n0: n0 + nb] = 0.0
            for c in range(C):
                wv = w[w2 + c * H + j]
                for n in range(nb):
                    Q[row, n0 + n] += wv * AW[c, k, n]
            for n in range(nb):
                Q[row, n0 + n] *= s[j, n] * s[k, n]
            if j == k:
                for n in range(nb):
                    Q[row, n0 + n] -= 2.0 * rW[j, n] * ht[j, n] * s[j, n]
    # the three blocks as matrix products over the samples (BLAS, single-threaded: fixed bits)
    Z = np.empty((C * H * (I + 1), nb))
    RS = np.empty((C * H, nb))
    for c in range(C):
        for j in range(H):
            for n in range(nb):
                RS[c * H + j, n] = r[c, n] * s[j, n]
            for a in range(I + 1):
                row = (c * H + j) * (I + 1) + a
                for n in range(nb):
                    Z[row, n] = AW[c, j, n] * s[j, n] * u[a, n]
    G12 = np.dot(Z, ht.T)  # [(c, j, a), k]
    D12 = np.dot(RS, u.T)  # [(c, j), a]: the k = j term
    Y = np.empty((C * C * (H + 1), nb))
    for c in range(C):
        for dd in range(C):
            for k in range(H + 1):
                row = (c * C + dd) * (H + 1) + k
                for n in range(nb):
                    Y[row, n] = A[c, dd, n] * ht[k, n]
    G22 = np.dot(Y, ht.T)  # [(c, d, k), l]
    # scatter into the full layout: (j, a) -> W1[j, a] (a = I: b1[j]); (c, k) -> W2[c, k] (k = H: b2[c])
    i1 = np.empty((H, I + 1), np.int64)
    for j in range(H):
        for a in range(I):
            i1[j, a] = w1 + j * I + a
        i1[j, I] = b1 + j
    i2 = np.empty((C, H + 1), np.int64)
    for c in range(C):
        for k in range(H):
            i2[c, k] = w2 + c * H + k
        i2[c, H] = b2 + c
    for j in range(H):
        for a in range(I + 1):
            for c in range(C):
                for k in range(H + 1):
                    v = G12[(c * H + j) * (I + 1) + a, k] + (D12[c * H + j, a] if k == j else 0.0)
                    Hb[i1[j, a], i2[c, k]] += v
    for c in range(C):
        for k in range(H + 1):
            for dd in range(C):
                for l in range(H + 1):
                    Hb[i2[c, k], i2[dd, l]] += G22[(c * C + dd) * (H + 1) + k, l]
    return 0.0


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def _sum_1hl(x, XT, y, sizes, woff, boff, aoff, free_index, tot):
    """The upper triangle of the cross-entropy's Hessian at ``x[P]`` in the full layout, summed in
    ``tot[P_full, P_full]`` (any contents before; only the upper triangle is meaningful after). The
    regulariser is not included."""
    N = XT.shape[1]
    P_full = woff[-1] + (sizes[-1] * sizes[-2]) + sizes[-1]
    w = _expand(x, free_index, P_full)
    act, d, e, tmp, sb = _scratch(sizes, BLOCK)
    tot[:] = 0.0
    I, Hd = sizes[0], sizes[1]
    Q = np.empty((Hd * Hd, N))
    for k in range(_n_blocks(N)):
        n0 = k * BLOCK
        _block_hessian_1hl(w, XT, y, n0, min(BLOCK, N - n0), 1.0 / N, sizes, woff, boff, aoff, act, tmp, sb, tot, Q)
    # first-layer block: sum_n Q[(j, k), n] u_a u_b over inputs that are non-zero somewhere (MNIST:
    # 604 of 784 pixels; the others' entries are zero), one product per pair j <= k
    used = np.array([a for a in range(I) if np.any(XT[a] != 0.0)] + [I], np.int64)  # the bias: u_I = 1
    U = np.ones((used.shape[0], N))
    for t in range(used.shape[0] - 1):
        U[t] = XT[used[t]]
    UQ = np.empty_like(U)
    for j in range(Hd):
        rj = np.where(used < I, woff[0] + j * I + used, boff[0] + j)
        for k in range(j, Hd):
            rk = np.where(used < I, woff[0] + k * I + used, boff[0] + k)
            for t in range(used.shape[0]):
                UQ[t] = U[t] * Q[j * Hd + k]
            G = np.dot(UQ, U.T)
            for a in range(used.shape[0]):  # the upper triangle only
                for b in range(used.shape[0]):
                    if rj[a] <= rk[b]:
                        tot[rj[a], rk[b]] += G[a, b]
                    elif k != j:  # (bias j, weight of k): its transpose is not computed
                        tot[rk[b], rj[a]] += G[a, b]


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def hessian_1hl(x, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam, tot):
    """Exact Hessian [P, P] at ``x[P]`` of a one-hidden-layer loss (closed form), summed in
    ``tot[P_full, P_full]`` (any contents; it is the result where every parameter is free)."""
    P, P_full = x.shape[0], tot.shape[0]
    _sum_1hl(x, XT, y, sizes, woff, boff, aoff, free_index, tot)
    if P == P_full:  # every parameter free: the upper triangle in place
        H = tot
    else:  # the free rows and columns of the upper triangle
        H = np.empty((P, P))
        for i in range(P):
            for j in range(i, P):
                H[i, j] = tot[free_index[i], free_index[j]]
    for i in range(P):
        H[i, i] += 2.0 * lam * reg[i]
    T = 64  # mirrored tile by tile
    for i0 in range(0, P, T):
        for j0 in range(i0, P, T):
            for i in range(i0, min(i0 + T, P)):
                for j in range(max(j0, i + 1), min(j0 + T, P)):
                    H[j, i] = H[i, j]
    return H


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def coupled_hessian_1hl(x, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam, tot, keep):
    """The exact Hessian at ``x[P]`` over the free parameters ``keep[m]`` (ascending): [m, m], a
    view of the start of ``tot[P_full, P_full]`` (any contents before), whose upper triangle holds
    it (the lower triangle is not set). Compacted in place: entry (i, j >= i) comes from
    (free_index[keep[i]], free_index[keep[j]]), at or after its own position and before every
    position still to be read."""
    P_full = tot.shape[0]
    _sum_1hl(x, XT, y, sizes, woff, boff, aoff, free_index, tot)
    m = keep.shape[0]
    flat = tot.reshape(-1)
    for i in range(m):
        src = free_index[keep[i]] * P_full
        for j in range(i, m):
            flat[i * m + j] = flat[src + free_index[keep[j]]]
        flat[i * m + i] += 2.0 * lam * reg[keep[i]]
    return flat[: m * m].reshape((m, m))
