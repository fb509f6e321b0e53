"""The GMIN-style L-BFGS of ``optimize.lbfgs``, compiled and fused with the MLP loss: one row per
task."""

from __future__ import annotations

import numpy as np
from numba import njit

from .blocks import ERROR_MODEL, _dot
from .rows import row_value_grad

@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
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


@njit(cache=True, error_model=ERROR_MODEL, nogil=True)
def lbfgs_row(x0, gtol, memory, max_step, max_rise, dguess, max_iter, max_decrease, max_fail, past_peak, peak_rise,
              metric, used, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam, x, g):
    """``optimize.lbfgs``'s L-BFGS (same steps, same acceptance, same resets, same stops) on one row from
    ``x0[P]``, preconditioned by the input metric (``metric``, ``used``: ``precondition_row``; an
    empty ``metric``: none); the final point and gradient are written to ``x`` and ``g``. The
    products M y of the stored pairs are kept (M y = M g_new - M g_old), so that M q of the
    two-loop recursion follows by linearity and M is applied once per accepted step, not twice
    (MNIST: 2.3 ms per iteration against 2.5, 1,500 iterations, measured).
    Returns (f, status, iterations, non-finite trials) with status 0 converged, 1 iteration
    limit, 2 too many failures, 3 past the peak.

    The pairs (s, y) live in a ring of ``memory`` slots, the newest at ``head``; the two-loop
    recursion visits the ``n`` stored pairs only, in the order of ``optimize.lbfgs._two_loop`` (the
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
    pre = metric.shape[0] > 0
    MY = np.zeros((M if pre else 0, P))  # M y of the stored pairs (preconditioned)
    Mg, Mq, Mgt = np.empty(P), np.empty(P), np.empty(P)  # M g, M q, M g of the trial point
    yMy = 0.0  # y.My of the newest pair (preconditioned)
    x[:] = x0
    f = row_value_grad(x, g, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam)
    if pre:
        Mg[:] = g
        precondition_row(Mg, metric, used, free_index, n_inputs, w1)
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
                if pre:
                    Mq[:] = Mg
                for t in range(n):  # newest first
                    i = (head - t) % M
                    alpha[i] = rho[i] * _dot(S[i], q, P)
                    a = alpha[i]
                    for j in range(P):
                        q[j] -= a * Y[i, j]
                    if pre:  # M q by linearity: one metric product per step, not two
                        for j in range(P):
                            Mq[j] -= a * MY[i, j]
                ys = _dot(S[head], Y[head], P)
                if pre:
                    q[:] = Mq
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
        ft = row_value_grad(trial, gt, XT, y, cols, XB, sizes, woff, boff, aoff, free_index, reg, lam)
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
            if pre:
                Mgt[:] = gt
                precondition_row(Mgt, metric, used, free_index, n_inputs, w1)
                for j in range(P):
                    MY[head, j] = Mgt[j] - Mg[j]
                Mg[:] = Mgt
                yMy = _dot(Y[head], MY[head], P)
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
