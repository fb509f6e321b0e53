"""Lowest Hessian eigenpairs: exact diagonalisation for small problems, Lanczos above."""

from __future__ import annotations

import numpy as np
import torch

EXACT_LIMIT = 1000  # free parameters up to which the full Hessian is diagonalised


def lowest_eigenpairs(pot, x: torch.Tensor, k: int = 1, exact_limit: int = EXACT_LIMIT):
    """(eigenvalues [k] ascending, eigenvectors [P, k], negative count) at ``x[P]``.

    The negative count is exact below ``exact_limit``; above it, it counts only the ``k``
    computed eigenvalues (Lanczos on Hessian-vector products, ``scipy.sparse.linalg.eigsh``).
    """
    if pot.P <= exact_limit:
        evals, evecs = torch.linalg.eigh(pot.hessian(x))
        evals, evecs = evals.cpu().numpy(), evecs.cpu().numpy()
        return evals[:k], evecs[:, :k], int((evals < 0).sum())
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
