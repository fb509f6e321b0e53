"""Compiled kernels (numba) of one block of samples of a dense tanh MLP loss: forward pass,
gradient, deltas and the R-operator of Hessian-vector products, with an exp that gives the same
bits on every machine. The rest of the package reaches them through ``rows``, ``hessian`` and
``lbfgs``; ``mlp.MLPKernel`` binds them to one loss.

Layouts: parameters in the full layout (``potentials.layout.Layout``), inputs transposed
``XT[I, N]`` so that samples are the innermost, vectorised loop. The training set is cut into
blocks of ``BLOCK`` samples whose contributions are summed in block order, so a row's value is
the same bits wherever it is computed. Every kernel is serial and releases the GIL: a job's
threads run whole independent tasks side by side (``workers``), never fine-grained pieces of one.

Loss (docs/methods.md §1): mean cross-entropy of ``softmax(logits)`` plus ``lam * sum(reg * w^2)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 128  # samples per block
_NO_INT, _NO_XB = np.empty(0, np.int64), np.empty((0, 0, 0))  # "no compact first layer" (``mlp.compact_inputs``)
FASTMATH = {"nsz"}  # no reassociation, no contraction into FMA: the same bits from every compile
# IEEE results for a zero divisor instead of a raised ZeroDivisionError (no divisor here can be
# zero): without the check LLVM vectorises the loops that divide (tanh, softmax); the same bits
ERROR_MODEL = "numpy"


# -- one block of samples -----------------------------------------------------------------------
# exp without a vector maths library: Cody-Waite reduction, a degree-13 Taylor polynomial on
# |r| <= ln2/2 and 2^k built from the exponent bits; within 1 ulp of libm's exp on [-708, 709]
# (tested), saturating outside it. No reassociation here either: it would fold the rounding of k.
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: k + _MAGIC holds the integer k in its low mantissa bits
_MAGIC_BITS = np.int64(4843621399236968448)  # the bits of _MAGIC
_INV_LN2 = 1.4426950408889634
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_C = tuple(1.0 / float(np.prod(np.arange(1, k + 1))) for k in range(14))


@njit(cache=True, error_model=ERROR_MODEL, fastmath=FASTMATH)
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


@njit(cache=True, error_model=ERROR_MODEL, inline="always")
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


@njit(cache=True, error_model=ERROR_MODEL, inline="always")
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


@njit(cache=True, error_model=ERROR_MODEL, fastmath=FASTMATH)
def _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, cols, XB):
    """Activations of samples n0:n0+nb into ``act`` (rows aoff[l]:aoff[l+1] hold layer l, the
    last layer holds softmax probabilities); ``tmp`` [4, >= nb] and ``sb`` [>= nb] are scratch.
    With a compact first layer (``cols`` not empty: ``mlp.compact_inputs``; ``n0`` a multiple of
    ``BLOCK``) the input rows of ``act`` are left unset and the first layer is one BLAS product
    over the used inputs. Returns the block's summed cross-entropy."""
    L = sizes.shape[0] - 1
    compact = cols.shape[0] > 0
    if compact:
        ni, no, ao, U = sizes[0], sizes[1], aoff[1], cols.shape[0]
        Wu = np.empty((no, U))
        for o in range(no):
            for t in range(U):
                Wu[o, t] = w[woff[0] + o * ni + cols[t]]
        Z = np.dot(Wu, XB[n0 // BLOCK])
        for o in range(no):
            bias = w[boff[0] + o]
            for n in range(nb):
                act[ao + o, n] = Z[o, n] + bias
    else:
        for i in range(sizes[0]):
            for n in range(nb):
                act[i, n] = XT[i, n0 + n]
    for layer in range(L):
        ni, no, ai, ao = sizes[layer], sizes[layer + 1], aoff[layer], aoff[layer + 1]
        for o in range(no):
            if not (layer == 0 and compact):
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


@njit(cache=True, error_model=ERROR_MODEL, fastmath=FASTMATH)
def _block_grad(w, XT, y, n0, nb, inv_n, sizes, woff, boff, aoff, act, d, e, tmp, sb, g, cols, XB):
    """Adds the gradient of (1/N) sum of the block's cross-entropies to ``g[P_full]``; returns
    that block's (1/N) sum."""
    ce = _forward(w, XT, y, n0, nb, sizes, woff, boff, aoff, act, tmp, sb, cols, XB)
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
            if layer == 0 and cols.shape[0] > 0:
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
    if cols.shape[0] > 0:  # first-layer weights over the used inputs (d holds layer 0's deltas), by BLAS
        ni, no = sizes[0], sizes[1]
        Dc = np.zeros((no, BLOCK))  # the block's columns past nb meet zero inputs
        for o in range(no):
            for n in range(nb):
                Dc[o, n] = d[o, n]
        dW = np.dot(Dc, XB[n0 // BLOCK].T)
        for o in range(no):
            for t in range(cols.shape[0]):
                g[woff[0] + o * ni + cols[t]] += dW[o, t]
    return ce * inv_n


@njit(cache=True, error_model=ERROR_MODEL, fastmath=FASTMATH)
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


@njit(cache=True, error_model=ERROR_MODEL, fastmath=FASTMATH)
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
