"""Basin-hopping with many chains, advanced together in cycles.

A cycle takes one step of every chain that has steps left: perturb its current minimum (or draw
its random start), quench all trials side by side through ``quench.settle``, then accept or
reject each by Metropolis, in chain order. A chain's step ``t`` draws from
``default_rng([seed, chain, t])``, every quench is independent of the others, and results are
merged in chain order, so the outcome depends on the seed only, never on timing or on the number
of threads. The chains are committed after every cycle, so a killed run resumes at the last
completed cycle. A rejected step restarts from the chain's current minimum, never from the
perturbed point.

Two controllers keep the chains where GMIN keeps them (docs/methods.md §6): the step size follows
``search.target_returns``, the share of steps that quench back to the chain's own minimum, and
``temperature: auto`` follows ``search.target_acceptance``, the Metropolis acceptance of steps that
reach another minimum (``adapt``). Until ``auto`` has its first temperature, only descents are
accepted.

Every quench is recorded (chain, step, minimum reached, accepted). The search stops when every
chain has taken ``search.steps`` steps, or, after a cycle in which every chain has taken at least
one step and at least ``search.min_quenches`` quenches have reached a minimum, when the
coverage of the symmetry classes reached, with the chains as sampling units, reaches
``search.coverage`` (``coverage.chain_coverage``;
docs/methods.md §6). Both are checked between cycles, so the
stop never depends on timing; ``search.max_seconds`` is a wall-clock budget beside them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from losslandscapes.landscape import quench

log = logging.getLogger(__name__)

MAX_START_DRAWS = 10  # random starts drawn for a chain before it gives up


@dataclass
class Chain:
    """State of one chain after its completed ``step``."""

    step: int
    step_size: float
    loss: float
    x: np.ndarray  # [P] current minimum


CALIBRATION_MOVES = 8  # uphill moves that ``temperature: auto`` waits for
ADAPT = 1.2  # factor of one adaptation of the step size or of the temperature (1.05 and 1.1: too slow for
#                the 12 steps per chain of a D2 run; measured, docs/methods.md §6)


def calibrate_temperature(rises) -> float:
    """``temperature: auto``: the first temperature, at which the median uphill move between
    minima of this landscape is accepted with probability one half, median(rises) / ln 2 (loss
    units). It then follows ``adapt``."""
    return float(np.median(rises) / np.log(2.0))


def adapt(value: float, hit: bool, target: float) -> float:
    """One step of a controller that settles where events are hits with probability ``target``:
    x ADAPT^(1 - target) on a hit, x ADAPT^(-target) otherwise (the mean log change vanishes
    exactly at the target)."""
    return value * ADAPT ** ((1 - target) if hit else -target)


def new_stats() -> dict:
    return {**quench.new_counters(), "revisits": 0, "accepted": 0, "proposed": 0}


def run(pot, db, search, seed: int, device) -> dict:
    """``search.chains`` chains of at most ``search.steps`` steps each (step 0: a random start),
    until ``search.coverage`` is reached. ``temperature: auto`` is calibrated after the first cycle
    that brings ``CALIBRATION_MOVES`` uphill moves (``calibrate_temperature``), only descents
    being accepted before that, and then follows ``adapt``. Returns counters, with ``coverage``
    (``Coverage.as_dict``) and ``temperature``."""
    P = pot.P
    auto = search.temperature == "auto"
    T = db.get("temperature") if auto else search.temperature
    rises = db.get("uphill_moves", [])  # loss rises of the steps taken before T was set (auto)
    stats = new_stats()
    stats.update(db.get("bh_stats", {}))
    t0 = time.monotonic()
    chains = {c: Chain(*v) for c, v in db.load_chains().items()}
    if chains:
        log.info("resuming basin-hopping: %d minima stored, chain steps %s", len(db.minima.ids),
                 sorted({ch.step for ch in chains.values()}))
    draws = dict.fromkeys(range(search.chains), 0)  # failed random starts per chain
    last_log = time.monotonic()
    cov = db.quench_coverage()  # of every quench merged so far
    while True:
        tasks = []  # (chain, step, trial)
        for c in range(search.chains):
            ch = chains.get(c)
            if ch is None and draws[c] < MAX_START_DRAWS:
                key = [seed, c, 0] if draws[c] == 0 else [seed, c, 0, draws[c]]
                tasks.append((c, 0, np.random.default_rng(key).uniform(-search.init_scale, search.init_scale, P)))
            elif ch is not None and ch.step < search.steps:
                rng = np.random.default_rng([seed, c, ch.step + 1])
                tasks.append((c, ch.step + 1, ch.x + ch.step_size * rng.uniform(-1.0, 1.0, P)))
        if not tasks:
            break
        if search.coverage and len(chains) == search.chains and min(ch.step for ch in chains.values()) >= 1 \
                and cov.n >= search.min_quenches and cov.coverage >= search.coverage:
            log.info("coverage %.3f reached the target %.3f after %d quenches (%d classes, Chao2 %.0f)",
                     cov.coverage, search.coverage, cov.n, cov.classes, cov.chao)
            break
        if search.max_seconds and time.monotonic() - t0 > search.max_seconds:
            log.warning("wall-clock limit of %.0f s reached; %d chain steps left", search.max_seconds,
                        sum(search.steps - ch.step for ch in chains.values()))
            break
        known = len(db.minima.ids)
        trials = torch.as_tensor(np.stack([t[2] for t in tasks]), device=device)
        ids = quench.settle(db, pot, trials, search, [t[1] for t in tasks], stats)
        for (c, t, _), mid in zip(tasks, ids):
            stats["revisits"] += bool(0 < mid <= known)  # stored before this cycle
            f = db.minima.loss[mid - 1] if mid >= 0 else float("nan")
            if t == 0:
                db.add_quench(c, t, mid, mid >= 0)
                if mid < 0:  # a random start that reached no minimum is redrawn
                    draws[c] += 1
                    continue
                chains[c] = Chain(0, search.step_size, f, db.minima.x[mid - 1])
            else:
                ch = chains[c]
                u = np.random.default_rng([seed, c, t, 1]).uniform()
                moved = mid >= 0 and abs(f - ch.loss) > search.energy_tol  # reached another minimum
                if T is None and moved and f > ch.loss:
                    rises.append(float(f - ch.loss))
                # before ``auto`` has its temperature, only descents are accepted (T = 0)
                accept = mid >= 0 and (f <= ch.loss or (T is not None and u < np.exp(-(f - ch.loss) / T)))
                stats["proposed"] += 1
                stats["accepted"] += int(accept)
                db.add_quench(c, t, mid, accept)
                step_size = ch.step_size
                if search.adapt_step:  # returns to the same minimum at ``target_returns`` (larger steps: fewer)
                    step_size = adapt(step_size, mid >= 0 and not moved, search.target_returns)
                    step_size = min(max(step_size, search.min_step_size), search.max_step_size)
                if auto and T is not None and moved:  # moves to other minima accepted at ``target_acceptance``
                    T = adapt(T, not accept, search.target_acceptance)
                chains[c] = Chain(t, step_size, f, db.minima.x[mid - 1]) if accept else Chain(t, step_size, ch.loss, ch.x)
            ch = chains[c]
            db.save_chain(c, ch.step, ch.step_size, ch.loss, ch.x)
        if T is None and len(rises) >= CALIBRATION_MOVES:  # auto, after whole cycles: independent of threads
            T = calibrate_temperature(rises)
            db.set("calibrated_temperature", T)
            log.info("temperature %.3g: the median of %d uphill moves is accepted with probability 1/2", T, len(rises))
        if auto:
            db.set("temperature", T)
        db.set("uphill_moves", rises)
        stats["temperature"] = T
        db.set("bh_stats", stats)
        db.commit()
        cov = db.quench_coverage()
        if time.monotonic() - last_log > 5:
            last_log = time.monotonic()
            log.info("%d of at most %d chain steps done: %d minima (%d symmetry-distinct), lowest loss %.8f, "
                     "acceptance %.2f, coverage %.3f", sum(ch.step for ch in chains.values()),
                     search.chains * search.steps, len(db.minima.ids), len(set(db.minima.sym)),
                     min(db.minima.loss, default=float("nan")), stats["accepted"] / max(stats["proposed"], 1),
                     cov.coverage)
    stats["seconds"] = time.monotonic() - t0
    stats["coverage"] = cov.as_dict()
    log.info("basin-hopping done: %d minima (%d symmetry-distinct), lowest loss %.10f, %.1f s; %s", len(db.minima.ids),
             len(set(db.minima.sym)), min(db.minima.loss, default=float("nan")), stats["seconds"], stats["coverage"])
    return stats
