"""Batched GMIN/OPTIM-style L-BFGS (``MYLBFGS``) without line search.

One implementation serves every minimisation in the package: LJAT3 geometries, basin-hopping
quenches, transition-state push-offs. Rows of a batch are independent minimisations that share
one objective ``fg(x[B, P]) -> (f[B], g[B, P])``; finished rows leave the batch at once and new
rows may join it (``LBFGSPool``), so a batch is never held up by its slowest row.

Algorithm per row (docs/methods.md §2):
1. after a reset: ``d = -dguess * g * min(|g|, 1/|g|)``;
2. otherwise two-loop recursion over the last ``memory`` pairs, ``H0 = s.y / y.y`` of the newest
   pair, no curvature check (a zero ``s.y`` or ``y.y`` is replaced by 1). With a preconditioner
   ``M`` (``LBFGSSettings.precondition`` and a potential that has one: ``MLPLoss.precondition``)
   ``H0 = M s.y / y.My`` instead;
3. ``d`` reversed if uphill, then scaled to length at most ``max_step``;
4. the step is accepted if the energy rises by no more than ``max_rise``; otherwise it is retried
   at 0.1x; after more than ``max_decrease`` reductions the memory is reset and a failure counted
   (the row gives up after ``max_fail`` failures). A non-finite trial energy or gradient is a
   rejection and is counted.
5. optionally (``past_peak`` > 0) a row stops once its RMS gradient has risen to at least
   ``peak_rise`` times its starting value and then fallen below ``past_peak`` times that peak: a
   descent from a transition state is then past the inflection of its path, inside a basin.
   (The first steps from a push-off can halve its tiny gradient; that is no peak.)

``minimise_potential`` runs the compiled copy of this algorithm
(``potentials.kernels.lbfgs.lbfgs_row``, one row per task) when the potential has a CPU kernel,
and ``LBFGSPool`` otherwise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

log = logging.getLogger(__name__)

Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

CONVERGED, MAX_ITER, TOO_MANY_FAILURES, PAST_PEAK = 0, 1, 2, 3


@dataclass(frozen=True)
class LBFGSSettings:
    memory: int = 4
    max_step: float = 0.2
    max_rise: float = 1e-10
    dguess: float = 0.1
    gtol: float = 1e-10  # RMS gradient, sqrt(|g|^2 / P)
    max_iter: int = 100_000
    max_decrease: int = 10
    max_fail: int = 5
    past_peak: float = 0.0  # stop once past a peak of the RMS gradient (step 5; 0: off) ...
    peak_rise: float = 10.0  # ... that rose at least this factor above the starting RMS gradient
    precondition: bool = False  # H0 from the potential's preconditioner where it has one (step 2)

    def __post_init__(self):
        if self.memory < 1 or self.max_step <= 0 or self.gtol <= 0 or self.max_iter < 1 or not 0 <= self.past_peak < 1:
            raise ValueError(f"invalid L-BFGS settings: {self}")


@dataclass
class MinimiseResult:
    x: torch.Tensor  # [B, P] final coordinates
    f: torch.Tensor  # [B] final values
    rms: torch.Tensor  # [B] final RMS gradient
    status: torch.Tensor  # [B] int: CONVERGED, MAX_ITER, TOO_MANY_FAILURES or PAST_PEAK
    iterations: torch.Tensor  # [B] int: objective calls after the first
    n_nonfinite: int  # trial points rejected for a non-finite value or gradient

    @property
    def converged(self) -> torch.Tensor:
        return self.status == CONVERGED


def _two_loop(g, S, Y, rho, precondition=None):
    """L-BFGS direction ``-H g`` from memory S, Y [B, M, P] (newest last), rho [B, M], and an
    optional preconditioner [B, P] -> [B, P] (step 2)."""
    q = g.clone()
    m = S.shape[1]
    alpha = []
    for i in range(m - 1, -1, -1):
        a = rho[:, i] * (S[:, i] * q).sum(-1)
        q -= a[:, None] * Y[:, i]
        alpha.append(a)
    ys = (S[:, -1] * Y[:, -1]).sum(-1)
    if precondition is None:
        yy = (Y[:, -1] * Y[:, -1]).sum(-1)
    else:
        q = precondition(q)
        yy = (Y[:, -1] * precondition(Y[:, -1])).sum(-1)
    ys = torch.where(ys == 0, torch.ones_like(ys), ys)
    yy = torch.where(yy == 0, torch.ones_like(yy), yy)
    r = q * (ys / yy)[:, None]
    for i in range(m):
        b = rho[:, i] * (Y[:, i] * r).sum(-1)
        r += S[:, i] * (alpha[m - 1 - i] - b)[:, None]
    return -r


class LBFGSPool:
    """Rows that minimise side by side; rows may join at any time and leave when done.

    ``add`` queues rows (each with its own tag and RMS-gradient tolerance); ``step`` advances
    every row by one objective call and returns the rows that finished. A row's path does not
    depend on the other rows in the pool. ``precondition`` ([B, P] -> [B, P], symmetric positive
    definite): the metric of ``H0`` (step 2 of the module docstring); None: the identity.
    """

    def __init__(self, fg: Objective, P: int, settings: LBFGSSettings, device=None, dtype=torch.float64,
                 precondition: Callable | None = None):
        self.fg, self.s, self.P, self.precondition = fg, settings, P, precondition
        self.dev, self.dt = device, dtype
        z = lambda *shape, d=dtype: torch.zeros(*shape, dtype=d, device=device)  # noqa: E731
        self.x, self.f, self.g, self.d = z(0, P), z(0), z(0, P), z(0, P)
        self.S, self.Y, self.rho = z(0, settings.memory, P), z(0, settings.memory, P), z(0, settings.memory)
        self.k, self.ndec, self.nfail, self.iters = (z(0, d=torch.int64) for _ in range(4))
        self.gtol, self.rms0, self.peak = z(0), z(0), z(0)
        self.tags: list = []
        self.n_nonfinite = 0

    def __len__(self):
        return len(self.tags)

    def add(self, x: torch.Tensor, tags: list, gtol: float | None = None) -> list:
        """Queue rows ``x[k, P]``; returns rows that are already converged (see ``step``)."""
        x = x.to(device=self.dev, dtype=self.dt)
        f, g = self.fg(x)
        n = len(tags)
        zi = torch.zeros(n, dtype=torch.int64, device=self.dev)
        tol = torch.full((n,), self.s.gtol if gtol is None else gtol, dtype=self.dt, device=self.dev)
        cat = torch.cat
        self.x, self.f, self.g, self.d = cat([self.x, x]), cat([self.f, f]), cat([self.g, g]), cat([self.d, torch.zeros_like(x)])
        self.S = cat([self.S, torch.zeros(n, *self.S.shape[1:], dtype=self.dt, device=self.dev)])
        self.Y = cat([self.Y, torch.zeros_like(self.S[-n:])])
        self.rho = cat([self.rho, torch.zeros(n, self.s.memory, dtype=self.dt, device=self.dev)])
        self.k, self.ndec, self.nfail, self.iters = (cat([t, zi]) for t in (self.k, self.ndec, self.nfail, self.iters))
        self.gtol = cat([self.gtol, tol])
        rms0 = g.norm(dim=1) / self.P**0.5
        self.rms0, self.peak = cat([self.rms0, rms0]), cat([self.peak, rms0])
        self.tags += list(tags)
        status = torch.where(self.g.norm(dim=1) / self.P**0.5 <= self.gtol, CONVERGED, -1)
        nonfinite = ~(torch.isfinite(self.f) & torch.isfinite(self.g).all(1))
        status = torch.where(nonfinite, TOO_MANY_FAILURES, status)
        return self._finish(status)

    def _finish(self, status: torch.Tensor) -> list:
        """Remove rows whose ``status`` >= 0; return (tag, x, f, rms, status, iterations) for each."""
        done = status >= 0
        if not bool(done.any()):
            return []
        idx = torch.nonzero(done).flatten().tolist()
        rms = (self.g[done].norm(dim=1) / self.P**0.5).tolist()
        out = [(self.tags[i], self.x[i], float(self.f[i]), r, int(status[i]), int(self.iters[i])) for i, r in zip(idx, rms)]
        keep = ~done
        for name in ("x", "f", "g", "d", "S", "Y", "rho", "k", "ndec", "nfail", "iters", "gtol", "rms0", "peak"):
            setattr(self, name, getattr(self, name)[keep])
        self.tags = [t for t, d in zip(self.tags, done.tolist()) if not d]
        return out

    def step(self) -> list:
        """One objective call for every row; returns the rows that finished."""
        s, x, f, g, k, ndec = self.s, self.x, self.f, self.g, self.k, self.ndec
        if not self.tags:
            return []
        gnorm = g.norm(dim=1)
        first = -s.dguess * g * torch.minimum(gnorm, 1.0 / gnorm)[:, None]
        dnew = torch.where((k == 0)[:, None], first, _two_loop(g, self.S, self.Y, self.rho, self.precondition))
        dnew = torch.where(((dnew * g).sum(1) > 0)[:, None], -dnew, dnew)
        dnew = dnew * torch.clamp(s.max_step / dnew.norm(dim=1), max=1.0).nan_to_num(1.0)[:, None]
        self.d = torch.where((ndec == 0)[:, None], dnew, self.d)
        trial = x + self.d * (0.1 ** ndec.to(self.dt))[:, None]
        ft, gt = self.fg(trial)
        finite = torch.isfinite(ft) & torch.isfinite(gt).all(1)
        self.n_nonfinite += int((~finite).sum())
        accept = finite & (ft - f <= s.max_rise)
        self.iters += 1
        sv, yv = trial - x, gt - g
        ys = (sv * yv).sum(1)
        ys = torch.where(ys == 0, torch.ones_like(ys), ys)
        a1, a2, a3 = accept[:, None], accept[:, None], accept[:, None, None]
        self.S = torch.where(a3, torch.cat([self.S[:, 1:], sv[:, None]], 1), self.S)
        self.Y = torch.where(a3, torch.cat([self.Y[:, 1:], yv[:, None]], 1), self.Y)
        self.rho = torch.where(a2, torch.cat([self.rho[:, 1:], (1.0 / ys)[:, None]], 1), self.rho)
        self.x = torch.where(a1, trial, x)
        self.f = torch.where(accept, ft, f)
        self.g = torch.where(a1, gt, g)
        self.k = torch.where(accept, k + 1, k)
        ndec = torch.where(accept, 0, ndec + 1)
        reset = ndec > s.max_decrease  # too many reductions: reset memory, count a failure
        self.S = torch.where(reset[:, None, None], 0.0, self.S)
        self.Y = torch.where(reset[:, None, None], 0.0, self.Y)
        self.rho = torch.where(reset[:, None], 0.0, self.rho)
        self.k = torch.where(reset, 0, self.k)
        self.ndec = torch.where(reset, 0, ndec)
        self.nfail = self.nfail + reset.to(torch.int64)
        rms = self.g.norm(dim=1) / self.P**0.5
        self.peak = torch.maximum(self.peak, rms)
        status = torch.full_like(self.k, -1)
        status = torch.where(self.iters >= s.max_iter, MAX_ITER, status)
        status = torch.where(self.nfail > s.max_fail, TOO_MANY_FAILURES, status)
        past = (self.peak >= s.peak_rise * self.rms0) & (rms < s.past_peak * self.peak)
        status = torch.where(past, PAST_PEAK, status)
        status = torch.where(rms <= self.gtol, CONVERGED, status)
        return self._finish(status)


def minimise(
    fg: Objective,
    x0: torch.Tensor,
    settings: LBFGSSettings = LBFGSSettings(),
    progress_seconds: float = 10.0,
    label: str = "minimise",
    precondition: Callable | None = None,
) -> MinimiseResult:
    """Minimise every row of ``x0`` [B, P] (float64, any device); see the module docstring and
    ``LBFGSPool`` for ``precondition``."""
    B, P = x0.shape
    pool = LBFGSPool(fg, P, settings, x0.device, x0.dtype, precondition)
    out_x = x0.clone()
    out_f = torch.full((B,), float("nan"), dtype=x0.dtype)
    out_rms, out_status, out_iter = out_f.clone(), torch.zeros(B, dtype=torch.int64), torch.zeros(B, dtype=torch.int64)

    def collect(rows):
        for i, x, f, rms, status, iters in rows:
            out_x[i], out_f[i], out_rms[i], out_status[i], out_iter[i] = x, f, rms, status, iters

    collect(pool.add(x0, list(range(B))))
    last_log, it = time.monotonic(), 0
    while len(pool):
        collect(pool.step())
        it += 1
        if progress_seconds and time.monotonic() - last_log > progress_seconds:
            last_log = time.monotonic()
            log.info("%s: iteration %d, %d of %d rows still running", label, it, len(pool), B)
    return MinimiseResult(out_x, out_f, out_rms, out_status, out_iter, pool.n_nonfinite)


def minimise_potential(pot, x0: torch.Tensor, settings: LBFGSSettings, label: str = "minimise") -> MinimiseResult:
    """``minimise`` on ``pot``: the compiled rows of ``pot.kernel`` where there is one (CPU),
    otherwise ``LBFGSPool`` on ``pot.value_and_grad``; preconditioned by ``pot.precondition``
    where the potential has one and ``settings.precondition`` asks for it."""
    precondition = pot.precondition if settings.precondition else None
    kernel = pot.kernel
    if kernel is None:
        return minimise(pot.value_and_grad, x0, settings, label=label, precondition=precondition)
    X0 = x0.detach().numpy()
    X, f, G, status, iters, nonfinite = kernel.lbfgs(X0, np.full(len(X0), settings.gtol), settings,
                                                     precondition is not None)
    rms = np.linalg.norm(G, axis=1) / X.shape[1] ** 0.5
    return MinimiseResult(*(torch.from_numpy(a) for a in (X, f, rms, status, iters)), int(nonfinite.sum()))


def gradient_flow(
    fg: Objective,
    x0: torch.Tensor,
    rms_switch: float = 1e-4,
    max_displacement: float = 0.01,
    max_iter: int = 100_000,
) -> torch.Tensor:
    """Follow steepest descent ``dx/dt = -g`` from every row of ``x0`` [B, P].

    Steps of fixed length ``max_displacement`` along ``-g/|g|`` (halved for a row whenever its
    energy would rise) trace the gradient-flow path to within that length; a row stops once its
    RMS gradient is below ``rms_switch``, deep inside its basin. Finish with ``minimise``.
    """
    x = x0.clone()
    P = x.shape[1]
    f, g = fg(x)
    h = torch.full_like(f, max_displacement)
    for _ in range(max_iter):
        gn = g.norm(dim=1)
        active = (gn / P**0.5 > rms_switch) & (h > 1e-12)
        if not bool(active.any()):
            break
        trial = x - (h / gn)[:, None] * g
        ft, gt = fg(trial)
        ok = active & torch.isfinite(ft) & (ft < f)
        x = torch.where(ok[:, None], trial, x)
        f = torch.where(ok, ft, f)
        g = torch.where(ok[:, None], gt, g)
        h = torch.where(active & ~ok, h * 0.5, h)
    return x
