"""Lowest Hessian eigenpairs: exact diagonalisation for small problems, Lanczos above; and the
spectrum check of a minimum (Cholesky factorisation where a closed-form Hessian is at hand)."""

from __future__ import annotations

import numpy as np
import torch

EXACT_LIMIT = 1000  # free parameters up to which the full Hessian is diagonalised
FACTOR_LIMIT = 12_000  # ... up to which a closed-form Hessian is factorised to verify a minimum (1.2 GB)


def eigh(H: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """(eigenvalues [P] ascending as NumPy, eigenvectors [P, P] on ``H``'s device) of a symmetric
    ``H``. On the CPU through NumPy's LAPACK, whose result does not depend on the number of
    threads (torch's does); on CUDA through torch."""
    if H.device.type == "cpu":
        evals, evecs = np.linalg.eigh(H.numpy())
        return evals, torch.from_numpy(evecs)
    evals, evecs = torch.linalg.eigh(H)
    return evals.cpu().numpy(), evecs


def lowest_eigenpairs(pot, x: torch.Tensor, k: int = 1, exact_limit: int = EXACT_LIMIT):
    """(eigenvalues [k] ascending, eigenvectors [P, k], negative count) at ``x[P]``.

    The negative count is exact below ``exact_limit``; above it, it counts only the ``k``
    computed eigenvalues (Lanczos on Hessian-vector products, ``scipy.sparse.linalg.eigsh``).
    """
    if pot.P <= exact_limit:
        evals, evecs = eigh(pot.hessian(x))
        return evals[:k], evecs[:, :k].cpu().numpy(), int((evals < 0).sum())
    from scipy.sparse.linalg import LinearOperator, eigsh

    xt = x.detach()

    def mv(v):
        vt = torch.as_tensor(np.ravel(v), dtype=xt.dtype, device=xt.device)
        return pot.hvp(xt, vt).cpu().numpy()

    op = LinearOperator((pot.P, pot.P), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(pot.P)
    evals, evecs = eigsh(op, k=k, which="SA", tol=1e-6, v0=v0, maxiter=20 * pot.P)
    order = np.argsort(evals)
    return evals[order], evecs[:, order], int((evals < 0).sum())


def minimum_spectrum(pot, x: torch.Tensor) -> tuple[float, int]:
    """(lowest Hessian eigenvalue, negative count) at a candidate minimum ``x[P]``.

    Exact diagonalisation up to ``EXACT_LIMIT``. Above it and up to ``FACTOR_LIMIT``:
    - with a closed-form Hessian on the CPU (``pot.kernel.one_hidden_layer``), a Cholesky
      factorisation proves it positive definite (negative count 0) and the lowest eigenvalue
      follows from the largest eigenvalue of H^-1 (``largest_eigenvalue``): a few dozen triangular
      solves instead of thousands of Hessian-vector products on a stiff spectrum (MNIST with raw
      pixels: condition numbers near 1e7). The first-layer weights from inputs that are zero in
      every training item (MNIST: about 1,750 of 7,960) are eigenvectors on their own (curvature
      2 lam) and stay out of the factorisation (``MLPKernel.coupled_hessian``);
    - without a kernel (torch, CUDA), the whole spectrum of the exact Hessian on the potential's
      device (``torch.linalg.eigvalsh``), so that no step of a minimum leaves the device.
    Where the factorisation fails, an LDLᵀ factorisation counts the negative eigenvalues exactly
    (``negative_count``) and the lowest eigenvalue is returned as nan: the point is no minimum
    and nothing stores it (MNIST: about 4 CPU-s, where Lanczos on Hessian-vector products took 5
    minutes for one such point in a default run). Every other case (no negative pivot, a
    decoupled zero curvature, above ``FACTOR_LIMIT``) falls back to ``lowest_eigenpairs``.
    """
    kernel = pot.kernel
    dense = EXACT_LIMIT < pot.P <= FACTOR_LIMIT  # above exact diagonalisation, a dense Hessian fits
    if dense and kernel is None:
        evals = torch.linalg.eigvalsh(pot.hessian(x.detach()))
        return float(evals[0]), int((evals < 0).sum())
    if dense and kernel.one_hidden_layer:
        import scipy.linalg as sl

        alone, xn = kernel.decoupled_curvature, x.detach().cpu().numpy()
        Hc, keep = kernel.coupled_hessian(xn)
        try:
            if (alone <= 0).any():
                raise np.linalg.LinAlgError("a decoupled parameter without positive curvature")
            # the upper triangle of C-ordered Hc is the lower one of the Fortran-ordered Hc.T
            factor = sl.cho_factor(Hc.T, lower=True, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:  # not positive definite (or a decoupled zero curvature)
            if (alone > 0).all():
                Hc, _ = kernel.coupled_hessian(xn)  # the factorisation overwrote it
                n_neg = negative_count(Hc.T)
                if n_neg > 0:
                    return float("nan"), n_neg
        else:
            mu = largest_eigenvalue(lambda V: sl.cho_solve(factor, V, check_finite=False), len(keep))
            return float(min(1.0 / mu, alone.min(initial=np.inf))), 0
    evals, _, n_neg = lowest_eigenpairs(pot, x, k=1)
    return float(evals[0]), n_neg


def largest_eigenvalue(apply, n: int, block: int = 4, tol: float = 1e-6, max_dim: int = 400) -> float:
    """Largest eigenvalue of a symmetric positive definite operator ``apply`` ([n, b] -> [n, b]) by
    block Krylov iteration: Rayleigh-Ritz over all blocks so far, each new block one call with
    ``block`` right-hand sides, until the top Ritz pair's residual is at most ``tol`` times its
    value (ARPACK's test) or the basis would exceed ``max_dim`` vectors (then the best Ritz value,
    a lower bound). For H^-1 by a Cholesky factor (MNIST), where every solve streams the factor
    from memory, a solve with 4 right-hand sides costs about 1.3 single ones: 0.53 CPU-s against
    ARPACK's 0.72 (8 vectors, the same tolerance) per minimum on 36 minima, the same eigenvalue to
    2.2e-12 (measured)."""
    V = np.linalg.qr(np.random.default_rng(0).standard_normal((n, min(block, n))))[0]
    Q, W = np.empty((n, 0)), np.empty((n, 0))  # orthonormal basis, the operator applied to it
    while True:
        AV = apply(V)
        Q, W = np.hstack([Q, V]), np.hstack([W, AV])
        T = Q.T @ W
        theta, S = np.linalg.eigh(0.5 * (T + T.T))
        s = S[:, -1]
        if np.linalg.norm(W @ s - theta[-1] * (Q @ s)) <= tol * theta[-1] or Q.shape[1] + block > min(n, max_dim):
            return float(theta[-1])
        V = AV - Q @ (Q.T @ AV)
        V -= Q @ (Q.T @ V)  # twice: orthogonal to working precision
        V = np.linalg.qr(V)[0]


def negative_count(A: np.ndarray) -> int:
    """Number of negative eigenvalues of the symmetric ``A[n, n]`` from its lower triangle
    (Fortran order; overwritten), by Sylvester's law of inertia: the signs of D in the
    Bunch-Kaufman factorisation A = L D Lᵀ (LAPACK ``dsytrf``), whose 2 x 2 blocks have one
    negative eigenvalue where their determinant is negative, two where it is positive and their
    trace negative."""
    from scipy.linalg import lapack

    lwork = int(lapack.dsytrf_lwork(len(A), lower=1)[0])  # blocked (MNIST's Hessian: 1.9 CPU-s; unblocked 23)
    ldu, ipiv, info = lapack.dsytrf(A, lower=1, overwrite_a=1, lwork=lwork)
    if info < 0:
        raise ValueError(f"dsytrf: argument {-info} is invalid")
    n, i, neg = len(ipiv), 0, 0
    while i < n:
        if ipiv[i] > 0:  # a 1 x 1 pivot
            neg += int(ldu[i, i] < 0)
            i += 1
        else:  # a 2 x 2 pivot on rows i, i + 1
            a, b, c = ldu[i, i], ldu[i + 1, i], ldu[i + 1, i + 1]
            det, trace = a * c - b * b, a + c
            neg += 1 if det < 0 else (2 if det > 0 and trace < 0 else int(det == 0 and trace < 0))
            i += 2
    return neg
