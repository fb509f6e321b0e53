"""Connecting minima: Dijkstra missing-connection over the database, then a grow phase.

Nodes are symmetry classes of minima. Edge weights: a tiny value where a transition state
already joins two classes, ``EXHAUSTED`` once a pair has used up its attempts, otherwise the
squared distance between canonical forms (an upper bound of the aligned distance). Every
unconnected pair on the shortest path from the global minimum to an unconnected class is
attempted with DNEB + hybrid eigenvector-following. Every decision depends only on the database,
which is committed after each attempt, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components, dijkstra

from .basinhopping import SETTLE_COUNTERS, settle
from .neb import climbing_candidates, n_images, relax_band
from .saddle import refine

log = logging.getLogger(__name__)

EXHAUSTED = 1e6
CONNECTED = 1e-12
MAX_CANDIDATES = 3


def attempt_pair(pot, db, ia: int, ib: int, c, search, stats: dict) -> int:
    """Search transition states between minima ``ia`` and ``ib``; returns how many it found
    (index one, both sides minimised, new or already stored)."""
    dev = pot.device
    xa = db.minima.x[ia - 1]
    xb, dist = db.symmetry.align(xa, db.minima.x[ib - 1])
    n = n_images(dist, c.images_per_unit, c.min_images, c.max_images)
    X, E = relax_band(pot, torch.as_tensor(xa, device=dev), torch.as_tensor(xb, device=dev), n, c.spring,
                      c.neb_iter, c.neb_rms)
    found = 0
    maxima = climbing_candidates(E, MAX_CANDIDATES)
    # the neighbours of the highest image are tried only when no maximum gave a transition state
    spare = [i for i in (maxima[0] - 1, maxima[0] + 1) if 0 < i < len(E) - 1] if maxima else []
    for idx in maxima + spare:
        if found and idx in spare:
            break
        r = refine(pot, X[idx], c)
        if not r.converged:
            stats["hef_unconverged"] += 1
            continue
        starts = torch.stack([r.x + c.push_off * r.vector, r.x - c.push_off * r.vector])
        ids = settle(db, pot, starts, search, -1, stats, label="push-off", quench=False)
        if (ids < 0).any():
            stats["pushoff_failed"] += 1
            continue
        db.add_ts(r.loss, r.x.cpu().numpy(), int(ids[0]), int(ids[1]), r.neg_eig, r.n_neg, r.rms)
        found += 1
    db.add_attempt(db.minimum_class(ia), db.minimum_class(ib))
    return found


class _Graph:
    """Symmetry classes, their canonical forms and the transition-state edges between them."""

    def __init__(self, db, canon_cache: dict):
        self.classes = sorted(set(db.minima.sym))
        self.pos = {cl: i for i, cl in enumerate(self.classes)}
        self.loss = np.array([db.minima.loss[cl - 1] for cl in self.classes])
        for cl in self.classes:
            if cl not in canon_cache:
                canon_cache[cl] = db.symmetry.canonical(db.minima.x[cl - 1])
        self.canon = np.stack([canon_cache[cl] for cl in self.classes])
        n = len(self.classes)
        self.direct = np.zeros((n, n), bool)
        for a, b in db.ts_edges():
            self.direct[self.pos[a], self.pos[b]] = self.direct[self.pos[b], self.pos[a]] = True
        self.gmin = int(np.argmin(self.loss))
        _, self.component = connected_components(self.direct, directed=False)

    def weights(self, attempts: dict, limit: int) -> np.ndarray:
        sq = (self.canon * self.canon).sum(1)
        W = np.maximum(sq[:, None] + sq[None, :] - 2 * self.canon @ self.canon.T, 1e-9)
        for (a, b), k in attempts.items():
            if k >= limit and a in self.pos and b in self.pos:
                W[self.pos[a], self.pos[b]] = W[self.pos[b], self.pos[a]] = EXHAUSTED
        W[self.direct] = CONNECTED
        np.fill_diagonal(W, 0.0)
        return W


def run(pot, db, c, search) -> dict:
    """Connect every minimum to the global minimum, then grow; budget from ``c`` (config.Connect)."""
    t0 = time.monotonic()
    stats = dict.fromkeys(("hef_unconverged", "pushoff_failed") + SETTLE_COUNTERS, 0)
    stats.update(db.get("connect_stats", {}))
    canon: dict = {}
    last_log = 0.0

    def budget_left():
        if c.max_seconds and time.monotonic() - t0 > c.max_seconds:
            return False
        return sum(db.attempts().values()) < c.max_pairs

    def attempt(a_cls, b_cls):
        attempt_pair(pot, db, a_cls, b_cls, c, search, stats)
        db.set("connect_stats", stats)
        db.commit()

    while budget_left():
        g = _Graph(db, canon)
        unreachable = set(db.get("unreachable", []))
        todo = [i for i in np.argsort(g.loss, kind="stable")
                if g.component[i] != g.component[g.gmin] and g.classes[i] not in unreachable]
        if time.monotonic() - last_log > 5:
            last_log = time.monotonic()
            log.info("connect: %d minima, %d transition states, %d classes unconnected to the global minimum",
                     len(db.minima.ids), len(db.ts.ids), len(todo))
        if not todo:
            break
        target = int(todo[0])
        _, pred = dijkstra(g.weights(db.attempts(), c.attempts_per_pair), indices=g.gmin, return_predecessors=True)
        path, node = [target], target
        while node != g.gmin and pred[node] >= 0:
            node = int(pred[node])
            path.append(node)
        attempts = db.attempts()
        pairs = []
        for u, v in zip(path[:-1], path[1:]):
            cu, cv = g.classes[u], g.classes[v]
            if not g.direct[u, v] and attempts.get((min(cu, cv), max(cu, cv)), 0) < c.attempts_per_pair:
                pairs.append((cu, cv))
        if not pairs:
            db.set("unreachable", sorted(unreachable | {g.classes[target]}))
            db.commit()
            continue
        for cu, cv in pairs:
            if not budget_left():
                break
            attempt(cu, cv)
    # grow: further pairs of low-lying minima
    while db.get("grow_done", 0) < c.grow_pairs:
        if c.max_seconds and time.monotonic() - t0 > c.max_seconds:
            break
        g = _Graph(db, canon)
        low = np.argsort(g.loss, kind="stable")[: c.grow_lowest]
        attempts = db.attempts()
        W = g.weights(attempts, c.attempts_per_pair)
        cand = [(W[u, v], g.classes[u], g.classes[v]) for i, u in enumerate(low) for v in low[i + 1:]
                if not g.direct[u, v] and (min(g.classes[u], g.classes[v]), max(g.classes[u], g.classes[v])) not in attempts]
        if not cand:
            break
        _, cu, cv = min(cand)
        db.set("grow_done", db.get("grow_done", 0) + 1)
        attempt(cu, cv)
    g = _Graph(db, canon)
    stats.update(
        seconds=time.monotonic() - t0,
        pair_attempts=int(sum(db.attempts().values())),
        connected_to_gmin=int((g.component == g.component[g.gmin]).sum()),
        classes=len(g.classes),
    )
    log.info("connect finished: %d minima, %d transition states; %d of %d classes connected to the global minimum",
             len(db.minima.ids), len(db.ts.ids), stats["connected_to_gmin"], stats["classes"])
    return stats
