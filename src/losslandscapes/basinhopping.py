"""Basin-hopping with many chains minimised side by side in one ``LBFGSPool``.

Each chain advances on its own: perturb its current minimum, quench loosely, and either
recognise a stored minimum or tighten to ``tight_gtol``, verify the Hessian and store it; then
accept by Metropolis. A chain's step ``t`` draws from ``default_rng([seed, chain, t])``, and the
chain's state is committed with the minima it found, so a killed run resumes where it stopped.
A rejected step restarts from the chain's current minimum, never from the perturbed point.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import torch

from .hessian import EXACT_LIMIT, lowest_eigenpairs, polish_minimum
from .optimize import CONVERGED, LBFGSPool, LBFGSSettings, minimise

log = logging.getLogger(__name__)


def lbfgs_settings(search) -> LBFGSSettings:
    return LBFGSSettings(memory=search.memory, max_step=search.max_step, gtol=search.tight_gtol, max_iter=search.max_iter)


def verify_minimum(pot, x: torch.Tensor) -> tuple[float, int]:
    """(smallest Hessian eigenvalue, number of negative eigenvalues) at ``x[P]``."""
    evals, _, n_neg = lowest_eigenpairs(pot, x, k=1)
    return float(evals[0]), n_neg


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
    # a symmetry image has the same Hessian spectrum as its class representative
    if spectrum is None:
        spectrum = db.minimum_spectrum(sym) if sym is not None else verify_minimum(pot, x)
    min_eig, n_neg = spectrum
    if n_neg > 0:
        stats["not_minimum"] += 1
        return -1
    return db.add_minimum(f, x_np, rms, min_eig, n_neg, step)[0]


def polish_and_store(db, pot, x: torch.Tensor, search, step: int, stats: dict) -> int | None:
    """Tighten a loosely quenched ``x[P]`` to ``tight_gtol`` by exact-Hessian eigenvector-following
    and store it: its id (-1: not a minimum), or None where that is not available (more than
    ``EXACT_LIMIT`` parameters) or did not converge, so the caller tightens with L-BFGS."""
    if pot.P > EXACT_LIMIT:
        return None
    r = polish_minimum(pot, x, search.tight_gtol)
    if not r.converged:
        stats["polish_failed"] += 1
        return None
    return store_minimum(db, pot, r.x, r.f, r.rms, step, stats, (r.min_eig, r.n_neg))


def settle(db, pot, x: torch.Tensor, search, step: int, stats: dict, label="quench", quench=True) -> np.ndarray:
    """Ids [B] of the minima that the rows of ``x[B, P]`` reach (-1: unconverged or not a minimum).

    A loose quench first; a row that lands on a stored minimum stops there, the others are
    tightened to ``tight_gtol`` (``polish_and_store``, else L-BFGS), verified and stored. Without
    ``quench`` (transition-state push-offs, whose gradient is already tiny) every row is tightened.
    """
    loose = replace(lbfgs_settings(search), gtol=search.quench_gtol)
    res = minimise(pot.value_and_grad, x, loose, label=label) if quench else None
    ids = np.full(len(x), -1, dtype=np.int64)
    todo = []
    for b in range(len(ids)):
        if quench and int(res.status[b]) != CONVERGED:
            stats["unconverged"] += 1
            continue
        xb = res.x[b] if quench else x[b].to(pot.device)
        plain = db.find_minimum(float(res.f[b]), xb.cpu().numpy())[0] if quench else None
        if plain is None:
            plain = polish_and_store(db, pot, xb, search, step, stats)
        if plain is None:
            todo.append((b, xb))
        else:
            ids[b] = plain
    if todo:
        tight = minimise(pot.value_and_grad, torch.stack([xb for _, xb in todo]), lbfgs_settings(search),
                         label=label + " (tighten)")
        for j, (b, _) in enumerate(todo):
            if int(tight.status[j]) != CONVERGED:
                stats["unconverged"] += 1
                continue
            ids[b] = store_minimum(db, pot, tight.x[j], float(tight.f[j]), float(tight.rms[j]), step, stats)
    return ids


SETTLE_COUNTERS = ("unconverged", "not_minimum", "nonfinite", "polish_failed")  # what settle() counts


def new_stats() -> dict:
    return dict.fromkeys(SETTLE_COUNTERS + ("revisits", "accepted", "proposed"), 0)


def run(pot, db, search, seed: int, device) -> dict:
    """``search.chains`` chains of ``search.steps`` steps each (step 0: a random start)."""
    P, T = pot.P, search.temperature
    stats = new_stats()
    stats.update(db.get("bh_stats", {}))
    t0 = time.monotonic()
    pool = LBFGSPool(pot.value_and_grad, P, lbfgs_settings(search), device)
    chains = db.load_chains()  # chain -> (completed step, step size, loss, params)
    if chains:
        log.info("resuming basin-hopping: %d minima stored, chain steps %s", len(db.minima.ids),
                 sorted({c[0] for c in chains.values()}))

    def launch(c: int):
        """Queue the next step of chain c (or its random start)."""
        if c in chains:
            t, step_size, _, x = chains[c]
            if t >= search.steps:
                return
            rng = np.random.default_rng([seed, c, t + 1])
            trial = x + step_size * rng.uniform(-1.0, 1.0, P)
            tag = (c, t + 1, 0)
        else:
            rng = np.random.default_rng([seed, c, 0])
            trial = rng.uniform(-search.init_scale, search.init_scale, P)
            tag = (c, 0, 0)
        finished.extend(pool.add(torch.as_tensor(trial[None], device=device), [tag], search.quench_gtol))

    def complete(c: int, t: int, attempt: int, mid: int):
        """Chain c finished step t with minimum ``mid`` (-1: none): accept or reject, commit, go on."""
        f = db.minima.loss[mid - 1] if mid >= 0 else float("nan")
        if t == 0:
            if mid < 0:  # a random start that reached no minimum is redrawn
                rng = np.random.default_rng([seed, c, 0, attempt + 1])
                trial = rng.uniform(-search.init_scale, search.init_scale, P)
                finished.extend(pool.add(torch.as_tensor(trial[None], device=device), [(c, 0, 2 * (attempt + 1))], search.quench_gtol))
                return
            chains[c] = (0, search.step_size, f, db.minima.x[mid - 1])
        else:
            t_prev, step_size, f_cur, x_cur = chains[c]
            u = np.random.default_rng([seed, c, t, 1]).uniform()
            accept = mid >= 0 and (f <= f_cur or u < np.exp(-(f - f_cur) / T))
            stats["proposed"] += 1
            stats["accepted"] += int(accept)
            if search.adapt_step:  # equilibrium at the target acceptance a
                a = search.target_acceptance
                step_size *= 1.05 if accept else 1.05 ** (-a / (1 - a))
            chains[c] = (t, step_size, f, db.minima.x[mid - 1]) if accept else (t, step_size, f_cur, x_cur)
        cs = chains[c]
        db.save_chain(c, cs[0], cs[1], cs[2], cs[3])
        db.set("bh_stats", stats)
        db.commit()
        launch(c)

    finished: list = []
    for c in range(search.chains):
        launch(c)
    last_log = time.monotonic()
    while len(pool) or finished:
        if not finished:
            if search.max_seconds and time.monotonic() - t0 > search.max_seconds:
                log.warning("wall-clock limit of %.0f s reached; %d quenches abandoned", search.max_seconds, len(pool))
                break
            finished.extend(pool.step())
        while finished:
            (c, t, stage), x, f, rms, status, _ = finished.pop(0)
            attempt = stage // 2
            if status != CONVERGED:
                stats["unconverged"] += 1
                complete(c, t, attempt, -1)
            elif stage % 2 == 0:  # loose quench: a known minimum, or tighten
                plain, _ = db.find_minimum(f, x.cpu().numpy())
                stats["revisits"] += plain is not None
                if plain is None:
                    plain = polish_and_store(db, pot, x, search, t, stats)
                if plain is None:
                    finished.extend(pool.add(x[None], [(c, t, stage + 1)], search.tight_gtol))
                else:
                    complete(c, t, attempt, plain)
            else:
                complete(c, t, attempt, store_minimum(db, pot, x, f, rms, t, stats))
        if time.monotonic() - last_log > 5:
            last_log = time.monotonic()
            steps = sum(v[0] for v in chains.values())
            log.info("%d of %d chain steps done: %d minima (%d symmetry-distinct), lowest loss %.8f, acceptance %.2f",
                     steps, search.chains * search.steps, len(db.minima.ids), len(set(db.minima.sym)),
                     min(db.minima.loss, default=float("nan")), stats["accepted"] / max(stats["proposed"], 1))
    stats["nonfinite_trials"] = pool.n_nonfinite
    stats["seconds"] = time.monotonic() - t0
    log.info("basin-hopping done: %d minima (%d symmetry-distinct), lowest loss %.10f, %.1f s", len(db.minima.ids),
             len(set(db.minima.sym)), min(db.minima.loss, default=float("nan")), stats["seconds"])
    return stats
