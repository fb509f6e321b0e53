"""The quench service: descend -> minimise -> polish -> verify -> identify -> store.

Every search that needs the minimum below a point uses it: basin-hopping for its perturbed
minima, connect for the two push-offs of each transition state. ``quench`` computes (rows side by
side: compiled L-BFGS rows and polishes as ``workers`` tasks on CPU, ``LBFGSPool`` on CUDA) and
only reads the database; ``store`` merges its results into the database in row order. So the ids
never depend on timing or thread count, and a search can quench inside its own tasks and merge
later. ``settle`` does both.

1. (push-offs only) the steepest-descent path: up to ``spectra.EXACT_LIMIT`` parameters it is
   followed by local-quadratic steps of arc length ``Connect.path_step`` on exact Hessians into a
   Newton region (``transition_states.path``), whose Newton point goes straight to the polish
   (step 3). Above that, L-BFGS steps of at most ``Connect.descent_step`` until the RMS gradient,
   after rising well above its starting value, has fallen to ``Connect.past_peak`` of its peak
   (``optimize.lbfgs``, step 5), then step 2;
2. a loose L-BFGS quench to ``Search.quench_gtol``; a row that lands on a stored minimum stops;
3. polish by exact-Hessian eigenvector-following to ``Search.tight_gtol`` (every mode downhill, no
   step may raise the loss); its last Hessian verifies the minimum (no negative eigenvalue).
   Above ``spectra.EXACT_LIMIT`` parameters, or where the polish fails, L-BFGS tightens instead
   and ``spectra.minimum_spectrum`` checks the lowest eigenvalue (Cholesky, or Lanczos);
4. identify against the database (plain and symmetry-aligned) and store if new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch

from losslandscapes import workers
from losslandscapes.transition_states.ef import eigenvector_following
from losslandscapes.transition_states.path import follow
from losslandscapes.transition_states.spectra import EXACT_LIMIT, minimum_spectrum
from losslandscapes.optimize.lbfgs import CONVERGED, MAX_ITER, PAST_PEAK, LBFGSSettings, minimise_potential

log = logging.getLogger(__name__)

COUNTERS = ("unconverged", "not_minimum", "nonfinite", "polish_failed")  # what store() counts
MAX_PATH_STEPS = 2000  # local-quadratic steps of a push-off's path at most (200 units at path_step 0.1)
POLISH_CYCLES = 200  # Hessians per polish at most
POLISH_TRUST = 0.1  # initial trust radius of the polish
POLISH_MAX_TRUST = 0.5
MAX_RISE = 1e-10  # largest loss rise a polish step may make
POLISH_REUSE = 10  # polish steps per Hessian at most (ef.eigenvector_following; 21-25 % fewer
# gradient-equivalents on 61 D1-e0 polishes, a Hessian counted as 19 gradients, measured; transition
# states took more Hessians with it)


def new_counters() -> dict:
    return dict.fromkeys(COUNTERS, 0)


def lbfgs_settings(search) -> LBFGSSettings:
    """The tight L-BFGS of ``search`` (config.Search)."""
    return LBFGSSettings(memory=search.memory, max_step=search.max_step, gtol=search.tight_gtol, max_iter=search.max_iter,
                         precondition=search.precondition)


@dataclass(frozen=True)
class Descent:
    """How a push-off follows the steepest-descent path (step 1 of the module docstring)."""

    path_step: float  # arc length of a local-quadratic step (exact Hessians)
    convex_path_step: float  # ... at most, where the Hessian is positive definite
    newton_radius: float  # the path ends where the Newton step is shorter than this
    lbfgs: LBFGSSettings  # above EXACT_LIMIT parameters: short L-BFGS steps until past the gradient peak


def descent_settings(search, connect) -> Descent:
    """The path-following descent of a push-off (``connect``: config.Connect). Its L-BFGS is
    unpreconditioned (the steepest-descent path of the Euclidean metric, as OPTIM's) at the tight
    tolerance: a push-off starts with a tiny gradient (about |negative eigenvalue| x push-off),
    which must not count as converged."""
    return Descent(connect.path_step, connect.convex_path_step, connect.newton_radius,
                   replace(lbfgs_settings(search), max_step=connect.descent_step, past_peak=connect.past_peak,
                           precondition=False))


def store_minimum(db, pot, x: torch.Tensor, f: float, rms: float, step: int, stats: dict, spectrum=None) -> int:
    """Id of a tightly converged point after Hessian verification (stored if new); -1 if it is
    not a minimum or not finite. ``spectrum`` = (smallest eigenvalue, negative count) at ``x``
    when already known."""
    x_np = x.cpu().numpy()
    if not (np.isfinite(f) and np.isfinite(x_np).all()):
        stats["nonfinite"] += 1
        return -1
    plain, sym = db.find_minimum(f, x_np)
    if plain is not None:
        return plain
    if spectrum is None:  # a symmetry image has the spectrum of its class representative
        spectrum = db.minimum_spectrum(sym) if sym is not None else minimum_spectrum(pot, x)
    min_eig, n_neg = spectrum
    if n_neg > 0:
        stats["not_minimum"] += 1
        return -1
    return db.add_minimum(f, x_np, rms, min_eig, n_neg, step)[0]


def polish(pot, x: torch.Tensor, gtol: float):
    """Exact-Hessian eigenvector-following from ``x[P]`` down to a minimum at RMS gradient ``gtol``
    (``ef.EFResult``); None above ``EXACT_LIMIT`` parameters."""
    if pot.P > EXACT_LIMIT:
        return None
    return eigenvector_following(pot, x, 0, gtol, POLISH_CYCLES, POLISH_TRUST, POLISH_MAX_TRUST, max_rise=MAX_RISE,
                                 reuse=POLISH_REUSE)


@dataclass
class Quenched:
    """What one row reached, before it meets the database."""

    x: torch.Tensor | None  # [P] tightly converged point; None if nothing new to store
    f: float = float("nan")
    rms: float = float("nan")
    spectrum: tuple[float, int] | None = None  # (lowest eigenvalue, negative count), from the polish
    known: int | None = None  # id of the stored minimum that the loose quench landed on
    unconverged: bool = False  # no minimum reached
    polish_failed: bool = False  # the polish did not converge (L-BFGS tightened instead)


def quench(db, pot, x: torch.Tensor, search, descent: Descent | None = None, label: str = "quench") -> list:
    """``Quenched`` results [B] of the rows of ``x[B, P]`` (steps 1-3 of the module docstring);
    reads ``db`` (to stop at a stored minimum), never writes it. With a CPU kernel every row is
    one task from start to finish (no row waits for the slowest quench before its polish); on
    CUDA the rows are minimised as one batch."""
    if pot.kernel is not None and len(x) > 1:
        return workers.map_tasks(lambda b: quench(db, pot, x[b: b + 1], search, descent, label)[0], range(len(x)))
    x = x.to(pot.device)
    ok = np.ones(len(x), bool)
    exact_path = descent is not None and pot.P <= EXACT_LIMIT
    if exact_path:
        ends = [follow(pot, xb, descent.path_step, descent.newton_radius, MAX_PATH_STEPS, descent.convex_path_step)
                for xb in x]
        ok = np.array([e.reached for e in ends])
        x = torch.stack([e.x for e in ends])
    elif descent is not None:
        path = minimise_potential(pot, x, descent.lbfgs, label=label + " (descent)")
        ok = np.isin(path.status.numpy(), (CONVERGED, PAST_PEAK, MAX_ITER))
        x = path.x
    loose = None if exact_path else minimise_potential(pot, x, replace(lbfgs_settings(search), gtol=search.quench_gtol),
                                                       label=label)

    def finish(b: int) -> Quenched:
        if not ok[b] or (loose is not None and int(loose.status[b]) != CONVERGED):
            return Quenched(None, unconverged=True)
        if loose is None:  # a Newton point at the path's end: polished from there, no long steps
            xb, fb, rms = x[b], float("nan"), float("nan")
        else:
            xb, fb, rms = loose.x[b], float(loose.f[b]), float(loose.rms[b])
            plain = db.find_minimum(fb, xb.cpu().numpy())[0]
            if plain is not None:
                return Quenched(None, known=plain)
        r = polish(pot, xb, search.tight_gtol)
        if r is not None and r.converged:
            return Quenched(r.x, r.f, r.rms, (r.eigenvalue, r.n_neg))
        return Quenched(xb, fb, rms, polish_failed=r is not None)  # to be tightened

    out = workers.map_tasks(finish, range(len(x)))
    todo = [b for b, q in enumerate(out) if q.x is not None and q.spectrum is None]
    if todo:
        tight = minimise_potential(pot, torch.stack([out[b].x for b in todo]), lbfgs_settings(search),
                                   label=label + " (tighten)")
        for j, b in enumerate(todo):
            done = int(tight.status[j]) == CONVERGED
            out[b] = Quenched(tight.x[j] if done else None, float(tight.f[j]), float(tight.rms[j]),
                              unconverged=not done, polish_failed=out[b].polish_failed)
        spectra = workers.map_tasks(lambda b: _spectrum(db, pot, out[b]), todo)
        for b, spectrum in zip(todo, spectra):
            out[b].spectrum = spectrum
    return out


def _spectrum(db, pot, q: Quenched) -> tuple[float, int] | None:
    """(lowest Hessian eigenvalue, negative count) of a tightened point, computed here, side by
    side with the other rows (MNIST: a Cholesky factorisation of about 6 s, which ``store`` did
    one row at a time); None where ``store_minimum`` needs none (a stored minimum or symmetry
    image, not finite, or not converged)."""
    if q.x is None or not np.isfinite(q.f):
        return None
    x = q.x.cpu().numpy()
    if not np.isfinite(x).all() or any(i is not None for i in db.find_minimum(q.f, x)):
        return None
    return minimum_spectrum(pot, q.x)


def store(db, pot, quenched: list, steps, stats: dict) -> np.ndarray:
    """Ids [B] of the minima in ``quenched`` (-1: none, or not a minimum), verified and stored in
    row order; new minima get ``found_at_step`` = ``steps`` (an int or one per row)."""
    steps = np.broadcast_to(np.asarray(steps, np.int64), (len(quenched),))
    ids = np.full(len(quenched), -1, dtype=np.int64)
    for b, q in enumerate(quenched):
        stats["polish_failed"] += q.polish_failed
        if q.unconverged:
            stats["unconverged"] += 1
        elif q.known is not None:
            ids[b] = q.known
        else:
            ids[b] = store_minimum(db, pot, q.x, q.f, q.rms, int(steps[b]), stats, q.spectrum)
    return ids


def settle(db, pot, x: torch.Tensor, search, steps, stats: dict, label: str = "quench",
           descent: LBFGSSettings | None = None) -> np.ndarray:
    """``store(quench(...))``: ids [B] of the minima that the rows of ``x[B, P]`` reach."""
    return store(db, pot, quench(db, pot, x, search, descent, label), steps, stats)
