"""Connecting minima: Dijkstra missing-connection over the database, then a grow phase.

Nodes are symmetry classes of minima. Edge weights: a tiny value where a transition state
already joins two classes, otherwise the squared aligned distance between the class
representatives (cached across iterations); a pair that has used up its attempts is no edge at
all, since a path through it could never be completed.

Every unconnected pair on the shortest path from the global minimum to the lowest unconnected
class is attempted with DNEB + hybrid eigenvector-following. When no unconnected class has such a
path, the lowest class still unconnected gets single-ended searches (eigenvector-following from
its minimum, started along its softest Hessian modes); these find the low saddles next to a
minimum that double-ended searches between distant minima miss, and open new routes. (Made first
for every unconnected class, they found new unconnected minima faster than they joined them on
the locality landscapes.) A pair or a class is searched at most ``attempts_per_pair`` times; the
loop ends when nothing is left to try or the budget ends. Every decision depends only on the
database, which is committed after each attempt, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components, dijkstra

from .basinhopping import SETTLE_COUNTERS, settle
from .hessian import lowest_eigenpairs
from .neb import climbing_candidates, n_images, relax_band
from .saddle import refine

log = logging.getLogger(__name__)

CONNECTED = 1e-6  # not smaller: scipy's dijkstra reads dense entries within 1e-8 of zero as no edge
MAX_CANDIDATES = 3  # band maxima refined per pair attempt
MODES_PER_SEARCH = 4  # Hessian modes of a minimum displaced along (both ways) per single-ended attempt
SINGLE_STEP = 0.05  # that displacement, in parameter units


def _store_saddle(pot, db, x0: torch.Tensor, c, search, stats: dict) -> bool:
    """Refine the guess ``x0[P]``; store it if it is an index-one saddle whose two push-offs reach
    minima (new minima are added). Returns whether it was stored (new or already known)."""
    r = refine(pot, x0, c)
    if not r.converged:
        stats["hef_unconverged"] += 1
        return False
    starts = torch.stack([r.x + c.push_off * r.vector, r.x - c.push_off * r.vector])
    ids = settle(db, pot, starts, search, -1, stats, label="push-off", quench=False)
    if (ids < 0).any():
        stats["pushoff_failed"] += 1
        return False
    db.add_ts(r.loss, r.x.cpu().numpy(), int(ids[0]), int(ids[1]), r.neg_eig, r.n_neg, r.rms)
    return True


def attempt_pair(pot, db, ia: int, ib: int, c, search, stats: dict) -> int:
    """Search transition states between minima ``ia`` and ``ib``; returns how many it found
    (index one, both sides minimised, new or already stored). The k-th attempt at a pair of
    classes (k = 1, 2, ...) uses k times the images and 1/k of ``max_uphill_step``, so a repeat
    searches a different band and refines its guesses in smaller steps."""
    dev = pot.device
    xa = db.minima.x[ia - 1]
    xb, dist = db.symmetry.align(xa, db.minima.x[ib - 1])
    a_cls, b_cls = db.minimum_class(ia), db.minimum_class(ib)
    k = 1 + db.attempts().get((min(a_cls, b_cls), max(a_cls, b_cls)), 0)
    n = n_images(dist, k * c.images_per_unit, k * c.min_images, k * c.max_images)
    X, E = relax_band(pot, torch.as_tensor(xa, device=dev), torch.as_tensor(xb, device=dev), n, c.spring,
                      c.neb_iter, c.neb_rms)
    ck = replace(c, max_uphill_step=c.max_uphill_step / k)
    found = 0
    maxima = climbing_candidates(E, MAX_CANDIDATES)
    # the neighbours of the highest image are tried only when no maximum gave a transition state
    spare = [i for i in (maxima[0] - 1, maxima[0] + 1) if 0 < i < len(E) - 1] if maxima else []
    for idx in maxima + spare:
        if found and idx in spare:
            break
        found += _store_saddle(pot, db, X[idx], ck, search, stats)
    db.add_attempt(a_cls, b_cls)
    return found


def attempt_single(pot, db, cls: int, c, search, stats: dict) -> int:
    """Single-ended searches from minimum ``cls``: eigenvector-following (uphill along the lowest
    mode) started ``SINGLE_STEP`` away along + and - each of ``MODES_PER_SEARCH`` Hessian modes of
    the minimum, the softest first; the k-th attempt takes the k-th set of modes. Returns how many
    transition states it found. Recorded as an attempt at the pair (cls, cls)."""
    k = 1 + db.attempts().get((cls, cls), 0)
    x = torch.as_tensor(db.minima.x[cls - 1], device=pot.device)
    _, V, _ = lowest_eigenpairs(pot, x, k=min(pot.P, k * MODES_PER_SEARCH))
    V = torch.as_tensor(V[:, (k - 1) * MODES_PER_SEARCH:], dtype=x.dtype, device=x.device)
    found = sum(_store_saddle(pot, db, x + s * SINGLE_STEP * v, c, search, stats) for v in V.T for s in (1, -1))
    db.add_attempt(cls, cls)
    return found


def missing_connections(loss: np.ndarray, dist: np.ndarray, direct: np.ndarray,
                        exhausted: np.ndarray) -> tuple[list[tuple[int, int]], int]:
    """Dijkstra missing-connection step over classes with losses ``loss[n]``, aligned distances
    ``dist[n, n]``, joined pairs ``direct[n, n]`` and used-up pairs ``exhausted[n, n]``.

    Returns the unjoined index pairs on the shortest path from the global minimum to the lowest
    class not connected to it that still has a path (empty if none), and how many classes are
    not connected. A joined pair costs ``CONNECTED``, a used-up pair is no edge, any other pair
    costs the squared distance.
    """
    W = np.maximum(dist**2, CONNECTED)
    W[exhausted] = np.inf
    W[direct] = CONNECTED
    np.fill_diagonal(W, 0.0)
    gmin = int(np.argmin(loss))
    _, comp = connected_components(direct, directed=False)
    reach, pred = dijkstra(W, indices=gmin, return_predecessors=True)
    todo = [int(i) for i in np.argsort(loss, kind="stable") if comp[i] != comp[gmin]]
    open_ = [i for i in todo if np.isfinite(reach[i])]
    if not open_:
        return [], len(todo)
    path = [open_[0]]
    while path[-1] != gmin:
        path.append(int(pred[path[-1]]))
    return [(u, v) for u, v in zip(path[:-1], path[1:]) if not direct[u, v]], len(todo)


class _Graph:
    """Symmetry classes, their aligned distances and the transition-state edges between them."""

    def __init__(self, db, dist_cache: dict, limit: int):
        self.classes = sorted(set(db.minima.sym))
        pos = {cl: i for i, cl in enumerate(self.classes)}
        self.loss = np.array([db.minima.loss[cl - 1] for cl in self.classes])
        n = len(self.classes)
        self.dist = np.zeros((n, n))
        for i, a in enumerate(self.classes):
            for j in range(i + 1, n):
                b = self.classes[j]
                if (a, b) not in dist_cache:
                    dist_cache[a, b] = db.symmetry.align(db.minima.x[a - 1], db.minima.x[b - 1])[1]
                self.dist[i, j] = self.dist[j, i] = dist_cache[a, b]
        self.direct = np.zeros((n, n), bool)
        for a, b in db.ts_edges():
            self.direct[pos[a], pos[b]] = self.direct[pos[b], pos[a]] = True
        self.attempts = db.attempts()
        self.tried = np.zeros((n, n), bool)
        self.exhausted = np.zeros((n, n), bool)
        for (a, b), k in self.attempts.items():
            if a in pos and b in pos:
                self.tried[pos[a], pos[b]] = self.tried[pos[b], pos[a]] = True
                self.exhausted[pos[a], pos[b]] = self.exhausted[pos[b], pos[a]] = k >= limit
        self.gmin = int(np.argmin(self.loss))
        _, self.component = connected_components(self.direct, directed=False)


def run(pot, db, c, search) -> dict:
    """Connect every minimum to the global minimum, then grow; budget from ``c`` (config.Connect)."""
    t0 = time.monotonic()
    stats = dict.fromkeys(("hef_unconverged", "pushoff_failed") + SETTLE_COUNTERS, 0)
    stats.update(db.get("connect_stats", {}))
    dist: dict = {}
    last_log = 0.0

    def out_of_time():
        return bool(c.max_seconds) and time.monotonic() - t0 > c.max_seconds

    def budget_left():
        return not out_of_time() and sum(db.attempts().values()) < c.max_pairs

    def attempt(search_fn, *classes):
        search_fn(pot, db, *classes, c, search, stats)
        db.set("connect_stats", stats)
        db.commit()

    while budget_left():
        g = _Graph(db, dist, c.attempts_per_pair)
        pairs, n_unconnected = missing_connections(g.loss, g.dist, g.direct, g.exhausted)
        if time.monotonic() - last_log > 5:
            last_log = time.monotonic()
            log.info("connect: %d minima, %d transition states, %d classes unconnected to the global minimum, "
                     "%d attempts (pairs and single-ended)", len(db.minima.ids), len(db.ts.ids), n_unconnected,
                     sum(g.attempts.values()))
        if not pairs:  # no double-ended route left: single-ended searches from the lowest stuck class
            stuck = [g.classes[i] for i in np.argsort(g.loss, kind="stable") if g.component[i] != g.component[g.gmin]
                     and g.attempts.get((g.classes[i],) * 2, 0) < c.attempts_per_pair]
            if not stuck:
                break
            attempt(attempt_single, stuck[0])
            continue
        for u, v in pairs:
            if budget_left():
                attempt(attempt_pair, g.classes[u], g.classes[v])
    # grow: the closest untried pairs among the lowest classes
    while db.get("grow_done", 0) < c.grow_pairs and not out_of_time():
        g = _Graph(db, dist, c.attempts_per_pair)
        low = np.argsort(g.loss, kind="stable")[: c.grow_lowest]
        cand = [(g.dist[u, v], g.classes[u], g.classes[v]) for i, u in enumerate(low) for v in low[i + 1:]
                if not g.direct[u, v] and not g.tried[u, v]]
        if not cand:
            break
        _, cu, cv = min(cand)
        db.set("grow_done", db.get("grow_done", 0) + 1)
        attempt(attempt_pair, cu, cv)
    g = _Graph(db, dist, c.attempts_per_pair)
    stats.update(
        seconds=time.monotonic() - t0,
        pair_attempts=int(sum(g.attempts.values())),
        connected_to_gmin=int((g.component == g.component[g.gmin]).sum()),
        classes=len(g.classes),
    )
    log.info("connect finished: %d minima, %d transition states; %d of %d classes connected to the global minimum",
             len(db.minima.ids), len(db.ts.ids), stats["connected_to_gmin"], stats["classes"])
    return stats
