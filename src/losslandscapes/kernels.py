"""Compiled CPU kernels (numba) for dense tanh MLP losses: value + gradient, Hessian-vector
product, exact Hessian, and the GMIN-style L-BFGS of ``optimize`` run row by row.

Layouts: parameters in the full layout (``layout.Layout``), inputs transposed ``XT[I, N]`` so that
samples are the innermost, vectorised loop. The training set is cut into blocks of ``BLOCK``
samples whose contributions are summed in block order, so a row's value is the same bits
wherever it is computed. Every kernel is serial and releases the GIL: a job's threads run whole
independent tasks side by side (``workers``), never fine-grained pieces of one.

Loss (docs/methods.md §1): mean cross-entropy of ``softmax(logits)`` plus ``lam * sum(reg * w^2)``.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from . import workers

BLOCK = 128  # samples per block
_NO_INT, _NO_FLOAT = np.empty(0, np.int64), np.empty(0)  # "dense inputs" for the sparse-input arguments
FASTMATH = {"nsz"}  # no reassociation, no contraction into FMA: the same bits from every compile
# IEEE results for a zero divisor instead of a raised ZeroDivisionError (no divisor here can be
# zero): without the check LLVM vectorises the loops that divide (tanh, softmax); the same bits
ERRORS = "numpy"


# -- one block of samples -----------------------------------------------------------------------
# exp without a vector maths library: Cody-Waite reduction, a degree-13 Taylor polynomial on
# |r| <= ln2/2 and 2^k built from the exponent bits; within 1 ulp of libm's exp on [-708, 709]
# (tested), saturating outside it. No reassociation here either: it would fold the rounding of k.
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: k + _MAGIC holds the integer k in its low mantissa bits
_MAGIC_BITS = np.int64(4843621399236968448)  # the bits of _MAGIC
_INV_LN2 = 1.4426950408889634
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_C = tuple(1.0 / float(np.prod(np.arange(1, k + 1))) for k in range(14))


@njit(cache=True, error_model=ERRORS, fastmath=FASTMATH)
def _vexp(a, nb, tb, sb):
    """``a[:nb] = exp(a[:nb])`` in place, vectorised; ``tb``, ``sb`` float64 and int64 scratch [>= nb]."""
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = _C
    for n in range(nb):
        x = min(max(a[n], -708.0), 709.0)
        k = np.floor(x * _INV_LN2 + 0.5)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        q = ((((((c13 * r + c12) * r + c11) * r + c10) * r + c9) * r + c8) * r + c7) * r + c6
        a[n] = ((((((q * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * r) + c0
        tb[n] = k + _MAGIC
    tk = tb.view(np.int64)
    for n in range(nb):
        sb[n] = (tk[n] - _MAGIC_BITS + 1023) << 52
    scale = sb.view(np.float64)
    for n in range(nb):
        a[n] *= scale[n]


@njit(cache=True, error_model=ERRORS, inline="always")
def _sum(a, nb):
    """``sum(a[:nb])`` in a fixed order: eight interleaved partial sums (two AVX registers), then
    added pairwise."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n8 = nb - nb % 8
    for n in range(0, n8, 8):
        s0 += a[n]
        s1 += a[n + 1]
        s2 += a[n + 2]
        s3 += a[n + 3]
        s4 += a[n + 4]
        s5 += a[n + 5]
        s6 += a[n + 6]
        s7 += a[n + 7]
    for n in range(n8, nb):
        s0 += a[n]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True, error_model=ERRORS, inline="always")
def _dot(a, b, nb):
    """``sum(a[:nb] * b[:nb])`` in the fixed order of ``_sum``."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n8 = nb - nb % 8
    for n in range(0, n8, 8):
        s0 += a[n] * b[n]
        s1 += a[n + 1] * b[n + 1]
        s2 += a[n + 2] * b[n + 2]
        s3 += a[n + 3] * b[n + 3]
        s4 += a[n + 4] * b[n + 4]
        s5 += a[n + 5] * b[n + 5]
        s6 += a[n + 6] * b[n + 6]
        s7 += a[n + 7] * b[n + 7]
    for n in range(n8, nb):
        s0 += a[n] * b[n]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True, error_model=ERRORS, fastmath=FASTMATH)
def _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, sp_ptr, sp_idx, sp_val):
    """Activations of samples n0:n0+nb into ``act`` (rows aoff[l]:aoff[l+1] hold layer l, the
    last layer holds softmax probabilities); ``tmp`` [4, >= nb] and ``sb`` [>= nb] are scratch.
    With sparse inputs (``sp_ptr`` not empty: ``sparse_inputs``) the input rows of ``act`` are left
    unset and the first layer runs over the non-zero inputs only. Returns the block's summed
    cross-entropy."""
    L = sizes.shape[0] - 1
    sparse = sp_ptr.shape[0] > 0
    if sparse:  # the first layer over non-zero inputs, its weights transposed (outputs contiguous)
        ni, no, ao = sizes[0], sizes[1], aoff[1]
        WT = w[woff[0]: woff[0] + no * ni].reshape(no, ni).T.copy()
        z = np.empty(no)
        for n in range(nb):
            z[:] = w[boff[0]: boff[0] + no]
            for k in range(sp_ptr[n0 + n], sp_ptr[n0 + n + 1]):
                i, v = sp_idx[k], sp_val[k]
                for o in range(no):
                    z[o] += WT[i, o] * v
            for o in range(no):
                act[ao + o, n] = z[o]
    else:
        for i in range(sizes[0]):
            for n in range(nb):
                act[i, n] = XT[i, n0 + n]
    for layer in range(L):
        ni, no, ai, ao = sizes[layer], sizes[layer + 1], aoff[layer], aoff[layer + 1]
        for o in range(no):
            if not (layer == 0 and sparse):
                bias = w[boff[layer] + o]
                for n in range(nb):
                    act[ao + o, n] = bias
                for i in range(ni):
                    wv = w[woff[layer] + o * ni + i]
                    if wv != 0.0:
                        for n in range(nb):
                            act[ao + o, n] += wv * act[ai + i, n]
            if layer < L - 1:  # tanh z = 1 - 2 / (exp(2z) + 1)
                for n in range(nb):
                    act[ao + o, n] *= 2.0
                _vexp(act[ao + o], nb, tmp[2], sb)
                for n in range(nb):
                    act[ao + o, n] = 1.0 - 2.0 / (act[ao + o, n] + 1.0)
    C, ao = sizes[L], aoff[L]
    m, tot = tmp[0], tmp[1]  # largest logit, then sum of exponentials; cross-entropy log(sum) - (z_y - max)
    for n in range(nb):
        m[n] = act[ao, n]
    for c in range(1, C):
        for n in range(nb):
            m[n] = max(m[n], act[ao + c, n])
    ce = tmp[3]  # cross-entropy of each sample
    for c in range(C):
        for n in range(nb):
            act[ao + c, n] -= m[n]
    for n in range(nb):
        tot[n] = 0.0
        ce[n] = -act[ao + y[n0 + n], n]
    for c in range(C):
        _vexp(act[ao + c], nb, tmp[2], sb)
        for n in range(nb):
            tot[n] += act[ao + c, n]
    for n in range(nb):
        ce[n] += np.log(tot[n])
    for c in range(C):
        for n in range(nb):
            act[ao + c, n] /= tot[n]
    return _sum(ce, nb)


@njit(cache=True, error_model=ERRORS, fastmath=FASTMATH)
def _block_grad(w, XT, y, n0, nb, inv_n, sizes, woff, boff, aoff, act, d, e, tmp, sb, g, sp_ptr, sp_idx, sp_val):
    """Adds the gradient of (1/N) sum of the block's cross-entropies to ``g[P_full]``; returns
    that block's (1/N) sum."""
    ce = _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, sp_ptr, sp_idx, sp_val)
    L = sizes.shape[0] - 1
    C, ao = sizes[L], aoff[L]
    for c in range(C):
        for n in range(nb):
            d[c, n] = act[ao + c, n] * inv_n
    for n in range(nb):
        d[y[n0 + n], n] -= inv_n
    for layer in range(L - 1, -1, -1):
        ni, no, ai = sizes[layer], sizes[layer + 1], aoff[layer]
        for o in range(no):
            g[boff[layer] + o] += _sum(d[o], nb)
            if layer == 0 and sp_ptr.shape[0] > 0:
                continue
            for i in range(ni):
                g[woff[layer] + o * ni + i] += _dot(d[o], act[ai + i], nb)
        if layer > 0:
            for i in range(ni):
                for n in range(nb):
                    e[i, n] = 0.0
                for o in range(no):
                    wv = w[woff[layer] + o * ni + i]
                    if wv != 0.0:
                        for n in range(nb):
                            e[i, n] += wv * d[o, n]
            for i in range(ni):
                for n in range(nb):
                    a = act[ai + i, n]
                    d[i, n] = e[i, n] * (1.0 - a * a)
    if sp_ptr.shape[0] > 0:  # first-layer weights over the non-zero inputs (d holds layer 0's deltas)
        ni, no = sizes[0], sizes[1]
        dWT = np.zeros((ni, no))
        for n in range(nb):
            for k in range(sp_ptr[n0 + n], sp_ptr[n0 + n + 1]):
                i, v = sp_idx[k], sp_val[k]
                for o in range(no):
                    dWT[i, o] += d[o, n] * v
        for o in range(no):
            for i in range(ni):
                g[woff[0] + o * ni + i] += dWT[i, o]
    return ce * inv_n


@njit(cache=True, error_model=ERRORS, fastmath=FASTMATH)
def _deltas(w, y, n0, nb, inv_n, sizes, woff, aoff, act, D, E):
    """Backpropagation of the block's cross-entropy after ``_forward``, per unit and sample in the
    rows of ``act``: ``D`` the derivative with respect to the unit's pre-activation (output layer:
    (p - onehot) / N), ``E`` (hidden layers) with respect to its activation."""
    L = sizes.shape[0] - 1
    C, ao = sizes[L], aoff[L]
    for c in range(C):
        for n in range(nb):
            D[ao + c, n] = act[ao + c, n] * inv_n
    for n in range(nb):
        D[ao + y[n0 + n], n] -= inv_n
    for layer in range(L - 1, 0, -1):
        ni, no, ai, ao = sizes[layer], sizes[layer + 1], aoff[layer], aoff[layer + 1]
        for i in range(ni):
            for n in range(nb):
                E[ai + i, n] = 0.0
            for o in range(no):
                wv = w[woff[layer] + o * ni + i]
                for n in range(nb):
                    E[ai + i, n] += wv * D[ao + o, n]
            for n in range(nb):
                a = act[ai + i, n]
                D[ai + i, n] = E[ai + i, n] * (1.0 - a * a)


@njit(cache=True, error_model=ERRORS, fastmath=FASTMATH)
def _rop(w, v, nb, inv_n, sizes, woff, boff, aoff, act, D, E, dact, dd, de, hv, first):
    """Adds the block's Hessian-vector product (cross-entropy part) along ``v[P_full]`` to ``hv``
    (Pearlmutter's R-operator: forward tangents ``dact``, then the tangent ``dd`` of
    backpropagation), after ``_forward`` and ``_deltas``. ``v`` is zero in the weight layers below
    ``first``, so the tangents below that layer are zero and skipped (a unit vector of the exact
    Hessian); terms with a zero entry of ``v`` are skipped too. Skipping adds no rounding: every
    skipped term is an exact zero."""
    L = sizes.shape[0] - 1
    for layer in range(first, L):
        ni, no, ai, ao = sizes[layer], sizes[layer + 1], aoff[layer], aoff[layer + 1]
        for o in range(no):
            vb = v[boff[layer] + o]
            for n in range(nb):
                dact[ao + o, n] = vb
            for i in range(ni):
                wv, vv = w[woff[layer] + o * ni + i], v[woff[layer] + o * ni + i]
                if layer == first:  # the tangents of this layer's inputs are zero
                    if vv != 0.0:
                        for n in range(nb):
                            dact[ao + o, n] += vv * act[ai + i, n]
                elif vv != 0.0:
                    for n in range(nb):
                        dact[ao + o, n] += vv * act[ai + i, n] + wv * dact[ai + i, n]
                else:
                    for n in range(nb):
                        dact[ao + o, n] += wv * dact[ai + i, n]
            if layer < L - 1:
                for n in range(nb):
                    a = act[ao + o, n]
                    dact[ao + o, n] *= 1.0 - a * a
    C, ao = sizes[L], aoff[L]
    for n in range(nb):  # tangent of softmax: dp = p (dz - p.dz)
        pdz = 0.0
        for c in range(C):
            pdz += act[ao + c, n] * dact[ao + c, n]
        for c in range(C):
            dd[c, n] = act[ao + c, n] * (dact[ao + c, n] - pdz) * inv_n
    for layer in range(L - 1, -1, -1):
        ni, no, ai, ao = sizes[layer], sizes[layer + 1], aoff[layer], aoff[layer + 1]
        for o in range(no):
            hv[boff[layer] + o] += _sum(dd[o], nb)
            for i in range(ni):
                t = _dot(dd[o], act[ai + i], nb)
                if layer > first:  # the tangent of this layer's input is not zero
                    t += _dot(D[ao + o], dact[ai + i], nb)
                hv[woff[layer] + o * ni + i] += t
        if layer > 0:
            for i in range(ni):
                for n in range(nb):
                    de[i, n] = 0.0
                for o in range(no):
                    wv, vv = w[woff[layer] + o * ni + i], v[woff[layer] + o * ni + i]
                    if vv != 0.0:
                        for n in range(nb):
                            de[i, n] += vv * D[ao + o, n] + wv * dd[o, n]
                    else:
                        for n in range(nb):
                            de[i, n] += wv * dd[o, n]
            for i in range(ni):
                for n in range(nb):
                    a = act[ai + i, n]
                    dd[i, n] = de[i, n] * (1.0 - a * a)
                if layer > first:
                    for n in range(nb):
                        a = act[ai + i, n]
                        dd[i, n] -= 2.0 * E[ai + i, n] * a * dact[ai + i, n]


@njit(cache=True, error_model=ERRORS, fastmath=FASTMATH)
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


# -- rows and batches ---------------------------------------------------------------------------
@njit(cache=True, error_model=ERRORS)
def _expand(x, free_index, P_full):
    w = np.zeros(P_full)
    for k in range(free_index.shape[0]):
        w[free_index[k]] = x[k]
    return w


@njit(cache=True, error_model=ERRORS)
def _scratch(sizes, nb):
    rows = 0
    for s in sizes:
        rows += s
    width = 0
    for s in sizes:
        width = max(width, s)
    return (np.empty((rows, nb)), np.empty((width, nb)), np.empty((width, nb)), np.empty((4, nb)),
            np.empty(nb, np.int64))


@njit(cache=True, error_model=ERRORS)
def _n_blocks(N):
    return (N + BLOCK - 1) // BLOCK


@njit(cache=True, error_model=ERRORS)
def _finish(x, ce, gfull, free_index, reg, lam, g):
    """Loss of free parameters ``x`` from the summed cross-entropy and full gradient; writes the
    free gradient into ``g``."""
    f = ce
    for k in range(free_index.shape[0]):
        f += lam * reg[k] * x[k] * x[k]
        g[k] = gfull[free_index[k]] + 2.0 * lam * reg[k] * x[k]
    return f


@njit(cache=True, error_model=ERRORS, nogil=True)
def row_value_grad(x, g, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam):
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
                          sp_ptr, sp_idx, sp_val)
        gfull += gb
    return _finish(x, ce, gfull, free_index, reg, lam, g)


@njit(cache=True, error_model=ERRORS, nogil=True)
def value_grad(X, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam):
    """Loss [B] and gradient [B, P] of free-parameter rows ``X[B, P]``."""
    B, P = X.shape
    f, G = np.empty(B), np.empty((B, P))
    for b in range(B):
        f[b] = row_value_grad(X[b], G[b], XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam)
    return f, G


@njit(cache=True, error_model=ERRORS, nogil=True)
def hvp(x, V, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam):
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
        _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, _NO_INT, _NO_INT, _NO_FLOAT)
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


@njit(cache=True, error_model=ERRORS, nogil=True)
def hessian_1hl(x, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam, tot):
    """Exact Hessian [P, P] at ``x[P]`` of a one-hidden-layer loss (closed form), summed in
    ``tot[P_full, P_full]`` (any contents; it is the result where every parameter is free)."""
    P = x.shape[0]
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


# -- GMIN-style L-BFGS, one row per task --------------------------------------------------------
@njit(cache=True, error_model=ERRORS, nogil=True)
def precondition_row(q, metric, used, free_index, n_inputs, w):
    """``q[P]`` with its first-layer weights (the full layout's first ``len(w)`` = hidden x inputs
    entries, rows of ``n_inputs``) multiplied by the input metric, in place: ``metric[U, U]`` is its
    block over the inputs ``used[U]``; its rows for the other inputs are unit vectors
    (``MLPKernel``). ``w``: scratch. The product is BLAS's (single-threaded): 0.4 ms on MNIST,
    where a compiled loop over all pixels took 4 ms (measured)."""
    n1 = w.shape[0]
    H, U = n1 // n_inputs, used.shape[0]
    w[:] = 0.0
    for k in range(free_index.shape[0]):
        if free_index[k] >= n1:
            break
        w[free_index[k]] = q[k]
    Wu = np.empty((H, U))
    for h in range(H):
        for t in range(U):
            Wu[h, t] = w[h * n_inputs + used[t]]
    out = np.dot(Wu, metric)
    for h in range(H):
        for t in range(U):
            w[h * n_inputs + used[t]] = out[h, t]
    for k in range(free_index.shape[0]):
        if free_index[k] >= n1:
            break
        q[k] = w[free_index[k]]


@njit(cache=True, error_model=ERRORS, nogil=True)
def lbfgs_row(x0, gtol, memory, max_step, max_rise, dguess, max_iter, max_decrease, max_fail, past_peak, peak_rise,
              metric, used, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam, x, g):
    """``optimize``'s L-BFGS (same steps, same acceptance, same resets, same stops) on one row from
    ``x0[P]``, preconditioned by the input metric (``metric``, ``used``: ``precondition_row``; an
    empty ``metric``: none); the final point and gradient are written to ``x`` and ``g``.
    Returns (f, status, iterations, non-finite trials) with status 0 converged, 1 iteration
    limit, 2 too many failures, 3 past the peak.

    The pairs (s, y) live in a ring of ``memory`` slots, the newest at ``head``; the two-loop
    recursion visits the ``n`` stored pairs only, in the order of ``optimize._two_loop`` (the
    empty slots that the torch version visits contribute exact zeros), with allocation-free
    loops and the fixed-order dot products of ``_dot`` (a sequential sum waited on every addition:
    5 % of an iteration at memory 80 on D1, measured; nearly all of it is the loss and gradient)."""
    P = x0.shape[0]
    M = memory
    S, Y, rho = np.zeros((M, P)), np.zeros((M, P)), np.zeros(M)
    head = M - 1  # slot of the newest pair
    n = 0  # pairs stored since the last reset
    n_inputs = sizes[0]
    w1 = np.empty(sizes[0] * sizes[1])
    My = np.empty(P)
    yMy = 0.0  # y.My of the newest pair (preconditioned)
    x[:] = x0
    f = row_value_grad(x, g, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam)
    sqP = np.sqrt(P)
    if not (np.isfinite(f) and np.all(np.isfinite(g))):
        return f, 2, 0, 0
    rms0 = peak = np.sqrt(_dot(g, g, P)) / sqP
    if rms0 <= gtol:
        return f, 0, 0, 0
    d, q, alpha = np.zeros(P), np.empty(P), np.empty(M)
    trial, gt = np.empty(P), np.empty(P)
    k = ndec = nfail = iters = nonfinite = 0
    while True:
        if ndec == 0:
            if k == 0:
                gn = np.sqrt(_dot(g, g, P))
                c = min(gn, 1.0 / gn)
                for j in range(P):
                    d[j] = -dguess * g[j] * c
            else:
                q[:] = g
                for t in range(n):  # newest first
                    i = (head - t) % M
                    alpha[i] = rho[i] * _dot(S[i], q, P)
                    a = alpha[i]
                    for j in range(P):
                        q[j] -= a * Y[i, j]
                ys = _dot(S[head], Y[head], P)
                if metric.shape[0]:
                    precondition_row(q, metric, used, free_index, n_inputs, w1)
                    yy = yMy
                else:
                    yy = _dot(Y[head], Y[head], P)
                c = (ys if ys != 0 else 1.0) / (yy if yy != 0 else 1.0)
                for j in range(P):
                    q[j] *= c
                for t in range(n - 1, -1, -1):  # oldest first
                    i = (head - t) % M
                    c = alpha[i] - rho[i] * _dot(Y[i], q, P)
                    for j in range(P):
                        q[j] += S[i, j] * c
                for j in range(P):
                    d[j] = -q[j]
            if _dot(d, g, P) > 0:
                d *= -1.0
            dn = np.sqrt(_dot(d, d, P))
            if dn > 0 and max_step / dn < 1.0:
                d *= max_step / dn
        c = 0.1 ** ndec
        for j in range(P):
            trial[j] = x[j] + d[j] * c
        ft = row_value_grad(trial, gt, XT, y, sp_ptr, sp_idx, sp_val, sizes, woff, boff, aoff, free_index, reg, lam)
        iters += 1
        finite = np.isfinite(ft) and np.all(np.isfinite(gt))
        nonfinite += not finite
        if finite and ft - f <= max_rise:
            head = (head + 1) % M
            n = min(n + 1, M)
            for j in range(P):
                S[head, j] = trial[j] - x[j]
                Y[head, j] = gt[j] - g[j]
            ys = _dot(S[head], Y[head], P)
            rho[head] = 1.0 / (ys if ys != 0 else 1.0)
            if metric.shape[0]:
                My[:] = Y[head]
                precondition_row(My, metric, used, free_index, n_inputs, w1)
                yMy = _dot(Y[head], My, P)
            x[:] = trial
            g[:] = gt
            f = ft
            k += 1
            ndec = 0
        else:
            ndec += 1
            if ndec > max_decrease:  # forget every pair
                k = ndec = n = 0
                nfail += 1
        rms = np.sqrt(_dot(g, g, P)) / sqP
        if rms <= gtol:
            return f, 0, iters, nonfinite
        peak = max(peak, rms)
        if peak >= peak_rise * rms0 and rms < past_peak * peak:
            return f, 3, iters, nonfinite
        if nfail > max_fail:
            return f, 2, iters, nonfinite
        if iters >= max_iter:
            return f, 1, iters, nonfinite


SPARSE_BELOW = 0.5  # inputs are stored sparse where fewer than this fraction is non-zero


def sparse_inputs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row pointers [N + 1], input indices and values of the non-zero inputs of ``X[N, I]`` (CSR),
    or three empty arrays (dense) unless fewer than ``SPARSE_BELOW`` of them are non-zero. MNIST
    pixels are 19% non-zero: its first layer then costs a fifth of the dense one."""
    nonzero = X != 0
    if X.size == 0 or nonzero.mean() >= SPARSE_BELOW:
        return _NO_INT, _NO_INT, _NO_FLOAT
    ptr = np.concatenate([[0], np.cumsum(nonzero.sum(1))]).astype(np.int64)
    rows, cols = np.nonzero(nonzero)
    return ptr, cols.astype(np.int64), np.ascontiguousarray(X[rows, cols])


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
        self.args = (np.ascontiguousarray(X.T), np.ascontiguousarray(y, np.int64), *sparse_inputs(X), sizes,
                     layout.weight_offsets, layout.bias_offsets, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                     layout.free_index, np.ascontiguousarray(reg, np.float64), float(lam))
        self.P, self.P_full = layout.P, layout.P_full
        self._buffer = threading.local()  # per-thread scratch of ``hessian``

    def value_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Loss [B] and gradient [B, P] of rows ``X[B, P]``."""
        return value_grad(np.ascontiguousarray(X, np.float64), *self.args)

    def hvp(self, x: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Hessian-vector products [K, P] at ``x[P]`` along the rows of ``V[K, P]``."""
        return hvp(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(V, np.float64), *self.args)

    def hessian(self, x: np.ndarray, scratch: bool = False) -> np.ndarray:
        """Exact Hessian [P, P] at ``x[P]`` (closed form for one hidden layer, else ``hvp`` along
        every unit vector, symmetrised). With ``scratch`` (one hidden layer) it is summed in this
        thread's reusable buffer, valid until the thread's next such call: MNIST's Hessian is
        507 MB, and first touching fresh memory took 1.3 s of its 3.3 s (measured)."""
        x = np.ascontiguousarray(x, np.float64)
        if self.one_hidden_layer:
            n = self.P_full
            if not scratch:
                return hessian_1hl(x, *self.args, np.empty((n, n)))
            if getattr(self._buffer, "H", None) is None:
                self._buffer.H = np.empty((n, n))
            return hessian_1hl(x, *self.args, self._buffer.H)
        H = hvp(x, np.eye(self.P), *self.args)
        return 0.5 * (H + H.T)

    def lbfgs(self, X0: np.ndarray, gtol: np.ndarray, s, precondition: bool) -> tuple:
        """``lbfgs_row`` on every row of ``X0[B, P]`` (tolerances ``gtol[B]``, ``optimize.LBFGSSettings``
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
