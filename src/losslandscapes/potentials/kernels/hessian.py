"""Compiled exact Hessian of a one-hidden-layer loss in closed form."""

from __future__ import annotations

import numpy as np
from numba import njit

from .blocks import _NO_INT, _NO_XB, BLOCK, ERROR_MODEL, FASTMATH, _forward
from .rows import _expand, _n_blocks, _scratch

PANEL_ROWS = 150  # rows per panel of the first-layer products, at least (``_sum_1hl``)


@njit(cache=True, error_model=ERROR_MODEL, fastmath=FASTMATH)
def _block_hessian_1hl(w, XT, y, n0, nb, inv_n, sizes, woff, boff, aoff, act, tmp, sb, Hb, Q, used, G12, D12):
    """Adds the block's exact cross-entropy Hessian of a one-hidden-layer network in closed form:
    between second-layer parameters to the upper triangle of ``Hb[P_full, P_full]`` (layer 1, then
    layer 2 in the layout); between first- and second-layer ones to ``G12[U, C * H * (H + 1)]``
    (rows: the inputs ``used[U]``, the bias last; columns (c, j, k)) and ``D12[C * H, U]`` (the
    k = j term), BLAS products over the block's samples; between first-layer ones, the per-sample
    coefficients of u_a u_b go to the block's columns of ``Q[H (H + 1) / 2, N]`` (rows: the pairs
    j <= k; ``_sum_1hl`` sums them over all samples at once). Symmetric pairs (j, k), (c, d) and
    (k, l) are computed once. With u = [x, 1],
    h~ = [h, 1], s = 1 - h^2, r = (p - onehot)/N and A = (diag p - p p^T)/N per sample:
      d2/dW1[j,a] dW1[k,b] = sum_n ((W2^T A W2)_jk s_j s_k + [j = k] (r W2)_j (-2 h_j s_j)) u_a u_b
      d2/dW1[j,a] dW2[c,k] = sum_n (A W2)_cj s_j u_a h~_k + [k = j] r_c s_j u_a
      d2/dW2[c,k] dW2[d,l] = sum_n A_cd h~_k h~_l
    (biases are the entries with a = I or k = H), and A W2 = p (W2 - p W2) / N columnwise."""
    _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, _NO_INT, _NO_XB)
    I, H, C = sizes[0], sizes[1], sizes[2]
    w2, b2 = woff[1], boff[1]
    W2T = np.empty((H, C))
    for c in range(C):
        for j in range(H):
            W2T[j, c] = w[w2 + c * H + j]
    ht = np.ones((H + 1, nb))
    ht[:H] = act[I: I + H, :nb]
    s = 1.0 - ht[:H] * ht[:H]
    p = np.ascontiguousarray(act[I + H: I + H + C, :nb])
    r = p * inv_n
    for n in range(nb):
        r[y[n0 + n], n] -= inv_n
    pw, rW = np.zeros((H, nb)), np.zeros((H, nb))  # (p W2)_j, (r W2)_j
    for j in range(H):
        pwj, rWj = pw[j], rW[j]
        for c in range(C):
            wv, pc, rc = W2T[j, c], p[c], r[c]
            for n in range(nb):
                pwj[n] += pc[n] * wv
                rWj[n] += rc[n] * wv
    AW = np.empty((C, H, nb))  # (A W2)_cj = p_c (W2_cj - (p W2)_j) / N
    for c in range(C):
        pc = p[c]
        for j in range(H):
            wv, pwj, awcj = W2T[j, c], pw[j], AW[c, j]
            for n in range(nb):
                awcj[n] = pc[n] * inv_n * (wv - pwj[n])
    row = 0
    for j in range(H):  # Q[(j <= k), n] = (W2^T A W2)_jk s_j s_k (- the k = j term)
        sj = s[j]
        for k in range(j, H):
            q, sk = Q[row, n0: n0 + nb], s[k]
            wv, a0 = W2T[j, 0], AW[0, k]
            for n in range(nb):
                q[n] = wv * a0[n]
            for c in range(1, C):
                wv, ac = W2T[j, c], AW[c, k]
                for n in range(nb):
                    q[n] += wv * ac[n]
            for n in range(nb):
                q[n] *= sj[n] * sk[n]
            if j == k:
                rWj, hj = rW[j], ht[j]
                for n in range(nb):
                    q[n] -= 2.0 * rWj[n] * hj[n] * sj[n]
            row += 1
    m = used.shape[0]  # first layer x second layer: sum_n u_a AW_cj s_j h~_k, and the k = j term
    ub, RSb, AWs = np.ones((m, nb)), np.empty((C * H, nb)), np.empty((C * H, nb))
    for t in range(m):
        if used[t] < I:
            ub[t] = act[used[t], :nb]
    for c in range(C):
        rc = r[c]
        for j in range(H):
            sj, awcj, rs, aws = s[j], AW[c, j], RSb[c * H + j], AWs[c * H + j]
            for n in range(nb):
                rs[n] = rc[n] * sj[n]
                aws[n] = awcj[n] * sj[n]
    D12 += np.dot(RSb, ub.T)
    # one BLAS product, the per-sample factor expanded over the shorter of u (m) and h~ (H + 1)
    if m <= H + 1:  # V[(a, k), n] = u_a h~_k: [(c, j), (a, k)]
        V = np.empty((m * (H + 1), nb))
        for t in range(m):
            ut = ub[t]
            for k in range(H + 1):
                v, hk = V[t * (H + 1) + k], ht[k]
                for n in range(nb):
                    v[n] = ut[n] * hk[n]
        Gb = np.dot(AWs, V.T)
        for cj in range(C * H):
            for t in range(m):
                for k in range(H + 1):
                    G12[t, cj * (H + 1) + k] += Gb[cj, t * (H + 1) + k]
    else:  # Mb[(c, j, k), n] = AWs h~_k: [a, (c, j, k)]
        Mb = np.empty((C * H * (H + 1), nb))
        for cj in range(C * H):
            aws = AWs[cj]
            for k in range(H + 1):
                mb, hk = Mb[cj * (H + 1) + k], ht[k]
                for n in range(nb):
                    mb[n] = aws[n] * hk[n]
        G12 += np.dot(ub, Mb.T)
    # second layer: A_cd and h~_k h~_l are both symmetric, so only c <= d and k <= l
    Ap, hh = np.empty((C * (C + 1) // 2, nb)), np.empty(((H + 1) * (H + 2) // 2, nb))
    row = 0
    for c in range(C):
        pc = p[c]
        for dd in range(c, C):
            ap, pd = Ap[row], p[dd]
            for n in range(nb):
                ap[n] = -pc[n] * pd[n] * inv_n
            if dd == c:
                for n in range(nb):
                    ap[n] += pc[n] * inv_n
            row += 1
    row = 0
    for k in range(H + 1):
        hk = ht[k]
        for l in range(k, H + 1):
            v, hl = hh[row], ht[l]
            for n in range(nb):
                v[n] = hk[n] * hl[n]
            row += 1
    G22 = np.dot(Ap, hh.T)  # [c <= d, k <= l]
    i2 = np.empty((C, H + 1), np.int64)  # (c, k) -> W2[c, k] (k = H: b2[c])
    for c in range(C):
        for k in range(H):
            i2[c, k] = w2 + c * H + k
        i2[c, H] = b2 + c
    cd = 0
    for c in range(C):
        for dd in range(c, C):
            kl = 0
            for k in range(H + 1):
                for l in range(k, H + 1):
                    v = G22[cd, kl]
                    a, b = i2[c, k], i2[dd, l]
                    Hb[min(a, b), max(a, b)] += v
                    if dd != c and l != k:  # and ((c, l), (d, k)), distinct where c != d
                        a, b = i2[c, l], i2[dd, k]
                        Hb[min(a, b), max(a, b)] += v
                    kl += 1
            cd += 1
    return 0.0


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def _add_first_layer(tot, R, j, k, a, b, v):
    """Adds ``v`` = sum_n Q[(j, k), n] u_a u_b (j <= k, a <= b) to the upper triangle of ``tot``
    at the entry ((j, a), (k, b)), and at ((j, b), (k, a)), a distinct entry where a != b and
    j != k. ``R[j, a]``: the position of W1[j, a]."""
    r, c = R[j, a], R[k, b]
    tot[min(r, c), max(r, c)] += v
    if a != b and j != k:
        r, c = R[j, b], R[k, a]
        tot[min(r, c), max(r, c)] += v


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
    I, Hd, C = sizes[0], sizes[1], sizes[2]
    # first-layer weights: from the inputs that are non-zero somewhere (MNIST: 613 of 784 pixels;
    # the others' entries are zero) and the bias (u_I = 1)
    used = np.array([a for a in range(I) if np.any(XT[a] != 0.0)] + [I], np.int64)
    m = used.shape[0]
    Q = np.empty((Hd * (Hd + 1) // 2, N))
    G12, D12 = np.zeros((m, C * Hd * (Hd + 1))), np.zeros((C * Hd, m))
    for k in range(_n_blocks(N)):
        n0 = k * BLOCK
        _block_hessian_1hl(w, XT, y, n0, min(BLOCK, N - n0), 1.0 / N, sizes, woff, boff, aoff, act, tmp, sb, tot, Q,
                           used, G12, D12)
    R = np.empty((Hd, m), np.int64)  # (j, t) -> W1[j, used[t]] (the bias: b1[j])
    for t in range(m):
        for j in range(Hd):
            R[j, t] = woff[0] + j * I + used[t] if used[t] < I else boff[0] + j
    for j in range(Hd):  # first layer x second layer
        for t in range(m):
            for c in range(C):
                for k in range(Hd + 1):
                    v = G12[t, (c * Hd + j) * (Hd + 1) + k] + (D12[c * Hd + j, t] if k == j else 0.0)
                    col = woff[1] + c * Hd + k if k < Hd else boff[1] + c
                    tot[R[j, t], col] += v
    U = np.ones((m, N))
    for t in range(m - 1):
        U[t] = XT[used[t]]
    # first layer
    if m <= Hd + 1:  # few inputs (LJAT3: two and the bias): one product, UU[(a <= b), n] = u_a u_b
        UU = np.empty((m * (m + 1) // 2, N))
        ab = 0
        for a in range(m):
            for b in range(a, m):
                for n in range(N):
                    UU[ab, n] = U[a, n] * U[b, n]
                ab += 1
        G1 = np.dot(Q, UU.T)  # [(j <= k), (a <= b)]
        jk = 0
        for j in range(Hd):
            for k in range(j, Hd):
                ab = 0
                for a in range(m):
                    for b in range(a, m):
                        _add_first_layer(tot, R, j, k, a, b, G1[jk, ab])
                        ab += 1
                jk += 1
    else:  # many inputs: per pair j <= k, G = sum_n Q[(j, k), n] u_a u_b, symmetric in (a, b),
        # so only b >= a: one product per panel of rows a, over the columns from the panel's first
        # row on (MNIST, 4 panels: 5/8 of the full product's arithmetic, about 0.2 s less, measured)
        panels = max(1, m // PANEL_ROWS)
        edges = np.linspace(0, m, panels + 1).astype(np.int64)
        UQ = np.empty_like(U)
        jk = 0
        for j in range(Hd):
            for k in range(j, Hd):
                q = Q[jk]
                jk += 1
                for t in range(m):
                    for n in range(N):
                        UQ[t, n] = U[t, n] * q[n]
                for p in range(panels):
                    a0, a1 = edges[p], edges[p + 1]
                    G = np.dot(UQ[a0:a1], U[a0:].T)
                    for a in range(a0, a1):
                        for b in range(a, m):
                            _add_first_layer(tot, R, j, k, a, b, G[a - a0, b - a0])


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def hessian_1hl(x, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam, tot):
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
def coupled_hessian_1hl(x, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam, tot, keep):
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
