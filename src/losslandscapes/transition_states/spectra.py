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
      follows from shift-invert Lanczos, the largest eigenvalue of H^-1: a few dozen triangular
      solves instead of thousands of Hessian-vector products on a stiff spectrum (MNIST with raw
      pixels: condition numbers near 1e7). The first-layer weights from inputs that are zero in
      every training item (MNIST: about 1,750 of 7,960) are eigenvectors on their own (curvature
      2 lam) and stay out of the factorisation (``MLPKernel.coupled_hessian``);
    - without a kernel (torch, CUDA), the whole spectrum of the exact Hessian on the potential's
      device (``torch.linalg.eigvalsh``), so that no step of a minimum leaves the device.
    A failed factorisation, and every other case, falls back to ``lowest_eigenpairs``.
    """
    kernel = pot.kernel
    dense = EXACT_LIMIT < pot.P <= FACTOR_LIMIT  # above exact diagonalisation, a dense Hessian fits
    if dense and kernel is None:
        evals = torch.linalg.eigvalsh(pot.hessian(x.detach()))
        return float(evals[0]), int((evals < 0).sum())
    if dense and kernel.one_hidden_layer:
        import scipy.linalg as sl
        from scipy.sparse.linalg import LinearOperator, eigsh

        alone = kernel.decoupled_curvature
        Hc, keep = kernel.coupled_hessian(x.detach().cpu().numpy())
        try:
            if (alone <= 0).any():
                raise np.linalg.LinAlgError("a decoupled parameter without positive curvature")
            # the upper triangle of C-ordered Hc is the lower one of the Fortran-ordered Hc.T
            factor = sl.cho_factor(Hc.T, lower=True, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            pass  # not positive definite: Lanczos finds the negative eigenvalue
        else:
            op = LinearOperator((len(keep),) * 2, matvec=lambda v: sl.cho_solve(factor, v, check_finite=False),
                                dtype=np.float64)
            v0 = np.random.default_rng(0).standard_normal(len(keep))
            # relative tolerance 1e-6 and 8 Lanczos vectors: 9 solves on MNIST where 1e-10 and the
            # default 20 vectors took 31 (0.3 against 0.9 s), the same eigenvalue to 7 digits (measured)
            mu = eigsh(op, k=1, which="LA", tol=1e-6, ncv=8, v0=v0, return_eigenvectors=False)
            return float(min(1.0 / mu[0], alone.min(initial=np.inf))), 0
    evals, _, n_neg = lowest_eigenpairs(pot, x, k=1)
    return float(evals[0]), n_neg
