"""Connecting minima: Dijkstra missing-connection over the database, then a grow phase.

Nodes are symmetry classes of minima. Edge weights: a tiny value where a transition state
already joins two classes, otherwise the squared aligned distance between the class
representatives (cached across iterations) times the pair's tries after the second; a pair that
has used up its attempts is no edge at all, since a path through it could never be completed.

Every unconnected pair on the shortest paths from the global minimum to the lowest unconnected
classes is attempted with DNEB + eigenvector-following; failed pairs give way to untried ones about
as close (their cost above), and a repeated attempt also quenches images of its band (stepping
stones between minima that no band joins directly). A class stays a target of these paths for at
most ``target_cycles`` cycles: among hundreds of classes Dijkstra always finds another route, and on
D1-e10 the last 4 of 277 classes took 400 of 1,000 attempts without being joined. When no
unconnected class has such a path, the lowest class still unconnected gets single-ended searches
(eigenvector-following from its minimum, started along its softest Hessian modes); these find the
low saddles next to a minimum that double-ended searches between distant minima miss, and open new
routes. (Made first for every unconnected class, they found new unconnected minima faster than they
joined them on the locality landscapes.) A pair or a class is searched at most ``attempts_per_pair``
times; the loop ends when nothing is left to try or the budget ends. With ``connect_lowest`` only
the lowest classes are targets (deep networks and the locality landscapes with hundreds of classes,
whose searches find new minima faster than they join them). With ``descend_lowest``, each Dijkstra
cycle is preceded by descent bands: a band from the global minimum to each of the lowest classes
that has not had one, every ``STONE_STRIDE``-th image quenched, round after round, so that the low
region is explored in bulk before pairs are attempted in it (bands are not attempts).

The grow phase then attempts the closest untried pairs among the ``grow_lowest`` lowest classes
until ``grow_pairs`` attempts are made or the Good-Turing coverage of the transition-state
classes found (every transition state an attempt stores, new or known, counted by class) reaches
``ts_coverage`` (``coverage``; docs/methods.md §6); the classes it finds are then joined as above.

Work goes in cycles, as PATHSAMPLE farms out OPTIM jobs: the pairs of ``PATHS_PER_CYCLE``
shortest paths (or one single-ended attempt, or ``GROW_CYCLE`` grow pairs) are chosen from the
database as it stood when the cycle began, computed side by side as ``workers`` tasks that write
nothing, and merged back in a fixed order, with a commit after each attempt. So results never
depend on timing or on the number of threads, and a killed run resumes at the last merged attempt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components, dijkstra

from losslandscapes.landscape import quench
from losslandscapes import workers
from losslandscapes.landscape.coverage import class_coverage
from losslandscapes.transition_states.ef import EFResult, transition_state
from losslandscapes.transition_states.spectra import lowest_eigenpairs
from losslandscapes.transition_states.neb import climbing_candidates, n_images, relax_band

log = logging.getLogger(__name__)

CONNECTED = 1e-6  # not smaller: scipy's dijkstra reads dense entries within 1e-8 of zero as no edge
MAX_CANDIDATES = 3  # band maxima refined per pair attempt
MODES_PER_SEARCH = 4  # Hessian modes of a minimum displaced along (both ways) per single-ended attempt
SINGLE_STEP = 0.05  # that displacement, in parameter units
PATHS_PER_CYCLE = 8  # shortest paths (to the lowest unconnected classes) whose pairs make one cycle
REPEAT_BAND = 4  # a repeated pair attempt relaxes its band this many times longer, with a climbing image
# (from the 763f6ca run's minima, 1 thread: D2-e50, 8 tries per pair, joins 29 of 29 classes in 82
# attempts, 43.5 CPU-s, against 25 of 28 in 128 attempts, 86 CPU-s without; D1-e0 joins its lowest
# 120 classes in 170 attempts, 36.7 CPU-s, against 119 of 120 in 195, 36.9 CPU-s; 8 times longer:
# 49.5 CPU-s on D1-e0)
STONE_STRIDE = 2  # a repeated pair attempt also quenches every STONE_STRIDE-th image of its band
# (stepping stones; connect from the 614820e run's minima, 1 thread: the deep networks' lowest 10
# joined 10, 10, 10, 10 in 312 CPU-s against 10, 10, 8, 10 without, every D2 class joined either
# way; every image 8, 10, 10, 10 in 421 CPU-s, every fourth 10, 10, 10, 9 in 395)
GROW_CYCLE = 4  # pair attempts per cycle of the grow phase (constants: results never depend on threads)


@dataclass
class Saddle:
    """A converged transition state and what its two push-offs reached, not yet merged."""

    ts: EFResult
    ends: list  # two quench.Quenched; none for a stored transition state
    known: int | None = None  # id of the stored transition state it is (its minima are stored)


@dataclass
class Attempt:
    """One pair (a, b) or single-ended (a, a) attempt, computed against the database as it stood
    when its cycle began."""

    classes: tuple[int, int]
    saddles: list[Saddle]
    unconverged: int  # guesses whose refinement did not converge
    minima: list  # quench.Quenched of band images (stepping stones)


def _saddle(pot, db, x0: torch.Tensor, c, search) -> Saddle | None:
    """Refine the guess ``x0[P]``; if it is an index-one saddle not yet stored, quench its two
    push-offs."""
    r = transition_state(pot, x0, c)
    if not r.converged:
        return None
    known = db.find_ts(r.f, r.x.cpu().numpy())
    if known is not None:  # found again: no push-offs (their paths are the dearest part)
        return Saddle(r, [], known)
    starts = torch.stack([r.x + c.push_off * r.vector, r.x - c.push_off * r.vector])
    return Saddle(r, quench.quench(db, pot, starts, search, quench.descent_settings(search, c), label="push-off"))


def _attempt(classes, saddles: list, minima: list = ()) -> Attempt:
    return Attempt(classes, [s for s in saddles if s is not None], sum(s is None for s in saddles), list(minima))


def search_pair(pot, db, ia: int, ib: int, k: int, c, search) -> Attempt:
    """Transition states between minima ``ia`` and ``ib``, the ``k``-th attempt at their pair of
    classes (k = 1, 2, ...). A repeat relaxes its band ``REPEAT_BAND`` times longer with a
    climbing image, so that its highest image is the saddle of the band's path, and refines its
    guesses with 1/k of ``max_uphill_step``: a first attempt's band of ``neb_iter`` iterations is
    cheap but on flat landscapes its highest image lies far above that saddle (D2-e50: 1.8e-3 above
    the lower minimum against 3e-4 after 200 iterations), and refinement from there walks to an
    unrelated saddle. With ``more_images_on_repeats`` the k-th attempt's band has k times the
    images (within k times ``min_images`` and ``max_images``). A repeat also quenches every
    ``STONE_STRIDE``-th image of its band: the minima below the band become stepping stones
    for later Dijkstra paths between minima that no band joins directly."""
    repeat = k > 1
    X, E = _band(pot, db, ia, ib, c, k if c.more_images_on_repeats else 1, REPEAT_BAND if repeat else 1, repeat)
    ck = replace(c, max_uphill_step=c.max_uphill_step / k)
    maxima = climbing_candidates(E, MAX_CANDIDATES)

    def refine(images):  # the images' transition-state searches, side by side
        return workers.map_tasks(lambda i: _saddle(pot, db, X[i], ck, search), images)

    saddles = refine(maxima)
    if not any(s is not None and not any(q.unconverged for q in s.ends) for s in saddles) and maxima:
        # no maximum gave a transition state: the neighbours of the highest image
        saddles += refine([i for i in (maxima[0] - 1, maxima[0] + 1) if 0 < i < len(E) - 1])
    stones = quench.quench(db, pot, X[1:-1:STONE_STRIDE], search) if repeat else []
    return _attempt((db.minimum_class(ia), db.minimum_class(ib)), saddles, stones)


def _band(pot, db, ia: int, ib: int, c, m: int = 1, longer: int = 1, climb: bool = False):
    """The DNEB band (X [n+2, P], E [n+2]) from minimum ``ia`` to ``ib`` aligned to it, with
    ``m`` times the images and ``longer`` times ``neb_iter`` FIRE iterations."""
    xa = db.minima.x[ia - 1]
    xb, dist = db.symmetry.align(xa, db.minima.x[ib - 1])
    n = n_images(dist, m * c.images_per_unit, m * c.min_images, m * c.max_images)
    return relax_band(pot, torch.as_tensor(xa, device=pot.device), torch.as_tensor(xb, device=pot.device), n,
                      c.spring, c.neb_iter * longer, c.neb_rms, climb=climb)


def descent_band(pot, db, ia: int, ib: int, c, search) -> list:
    """The minima below a band from minimum ``ia`` to ``ib`` (``neb_iter`` iterations, no
    refinement): every ``STONE_STRIDE``-th image quenched (quench.Quenched, not yet stored)."""
    X, _ = _band(pot, db, ia, ib, c)
    return quench.quench(db, pot, X[1:-1:STONE_STRIDE], search)


def search_single(pot, db, cls: int, k: int, c, search) -> Attempt:
    """Single-ended searches from minimum ``cls``, its ``k``-th: eigenvector-following (uphill along
    the lowest mode) started ``SINGLE_STEP`` away along + and - each of ``MODES_PER_SEARCH`` Hessian
    modes of the minimum, the softest first; the k-th attempt takes the k-th set of modes. Recorded
    as an attempt at the pair (cls, cls)."""
    x = torch.as_tensor(db.minima.x[cls - 1], device=pot.device)
    _, V, _ = lowest_eigenpairs(pot, x, k=min(pot.P, k * MODES_PER_SEARCH))
    V = torch.as_tensor(V[:, (k - 1) * MODES_PER_SEARCH:], dtype=x.dtype, device=x.device)
    guesses = [x + s * SINGLE_STEP * v for v in V.T for s in (1, -1)]
    return _attempt((cls, cls), workers.map_tasks(lambda g: _saddle(pot, db, g, c, search), guesses))


def merge(db, pot, att: Attempt, stats: dict) -> int:
    """Store an attempt's band minima and its transition states whose two push-offs reached minima
    (new minima are added) and count the attempt; returns how many transition states it stored
    (new or known)."""
    stats["hef_unconverged"] += att.unconverged
    n = len(db.minima.ids)
    quench.store(db, pot, att.minima, -1, stats)
    stats["band_minima"] += len(db.minima.ids) - n
    stored = 0
    for s in att.saddles:
        if s.known is not None:
            db.add_ts_found(s.known)
            stored += 1
            continue
        ids = quench.store(db, pot, s.ends, -1, stats)
        if (ids < 0).any():
            stats["pushoff_failed"] += 1
            continue
        i, _ = db.add_ts(s.ts.f, s.ts.x.cpu().numpy(), int(ids[0]), int(ids[1]), s.ts.eigenvalue, s.ts.n_neg, s.ts.rms)
        db.add_ts_found(i)
        stored += 1
    db.add_attempt(*att.classes)
    return stored


@dataclass
class MissingStep:
    """One Dijkstra missing-connection step (indices into the class arrays)."""

    pairs: list[tuple[int, int]]  # unjoined pairs on the shortest paths, each once
    targets: list[int]  # the classes those paths lead to
    unconnected: int  # classes not connected to the global minimum (among the lowest ``lowest``)


def missing_connections(loss: np.ndarray, dist: np.ndarray, direct: np.ndarray, tries: np.ndarray, limit: int,
                        n_paths: int = 1, lowest: int | None = None,
                        retired: np.ndarray | None = None) -> MissingStep:
    """Dijkstra missing-connection step over classes with losses ``loss[n]``, aligned distances
    ``dist[n, n]``, joined pairs ``direct[n, n]`` and attempts so far ``tries[n, n]``.

    The targets are the ``n_paths`` lowest classes not connected to the global minimum that still
    have a path and are not ``retired[n]``; with ``lowest``, only the lowest ``lowest`` classes are
    targets and counted. A joined pair costs ``CONNECTED``, a pair tried ``limit`` times is no edge,
    any other pair costs its squared distance, times its tries after the second: the second try (a
    climbing-image band) is as likely to succeed as a first, and later ones are made only where
    no pair of about the same cost is left.
    """
    W = np.maximum(dist**2, CONNECTED) * np.maximum(tries, 1)
    W[tries >= limit] = np.inf
    W[direct] = CONNECTED
    np.fill_diagonal(W, 0.0)
    gmin = int(np.argmin(loss))
    _, comp = connected_components(direct, directed=False)
    reach, pred = dijkstra(W, indices=gmin, return_predecessors=True)
    todo = [int(i) for i in np.argsort(loss, kind="stable")[:lowest] if comp[i] != comp[gmin]]
    targets = [i for i in todo if np.isfinite(reach[i]) and (retired is None or not retired[i])][:n_paths]
    pairs = []
    for end in targets:
        path = [end]
        while path[-1] != gmin:
            path.append(int(pred[path[-1]]))
        pairs += [(u, v) for u, v in zip(path[:-1], path[1:])
                  if not direct[u, v] and (u, v) not in pairs and (v, u) not in pairs]
    return MissingStep(pairs, targets, len(todo))


class _Graph:
    """Symmetry classes, their aligned distances and the transition-state edges between them."""

    def __init__(self, db, dist_cache: dict):
        self.classes = sorted(set(db.minima.sym))
        pos = {cl: i for i, cl in enumerate(self.classes)}
        self.loss = np.array([db.minima.loss[cl - 1] for cl in self.classes])
        n = len(self.classes)
        self.dist = np.zeros((n, n))
        for i, a in enumerate(self.classes):
            new = [b for b in self.classes[i + 1:] if (a, b) not in dist_cache]
            if new:
                d = db.symmetry.align_many(db.minima.x[a - 1], np.stack([db.minima.x[b - 1] for b in new]))[1]
                dist_cache.update({(a, b): float(v) for b, v in zip(new, d)})
            for j in range(i + 1, n):
                self.dist[i, j] = self.dist[j, i] = dist_cache[a, self.classes[j]]
        self.direct = np.zeros((n, n), bool)
        for a, b in db.ts_edges():
            self.direct[pos[a], pos[b]] = self.direct[pos[b], pos[a]] = True
        self.attempts = db.attempts()
        self.tries = np.zeros((n, n), int)
        for (a, b), k in self.attempts.items():
            if a in pos and b in pos:
                self.tries[pos[a], pos[b]] = self.tries[pos[b], pos[a]] = k
        self.gmin = int(np.argmin(self.loss))
        _, self.component = connected_components(self.direct, directed=False)


def run(pot, db, c, search) -> dict:
    """Connect every minimum to the global minimum, then grow; budget from ``c`` (config.Connect)."""
    t0 = time.monotonic()
    stats = {"hef_unconverged": 0, "pushoff_failed": 0, "band_minima": 0, "descent_bands": 0, "descent_minima": 0,
             **quench.new_counters()}
    stats.update(db.get("connect_stats", {}))
    dist: dict = {}
    last_log = 0.0

    def out_of_time():
        return bool(c.max_seconds) and time.monotonic() - t0 > c.max_seconds

    def budget_left():
        return not out_of_time() and sum(db.attempts().values()) < c.max_pairs

    def cycle(tasks: list) -> None:
        """Compute the attempts ``tasks`` [(search function, minima or class)] side by side, then
        merge them in order, committing after each. Tasks read the database's in-memory copy of
        the minima only (SQLite stays in this thread)."""
        done = db.attempts()

        def key(ids):  # (a, b) for a pair of minima, (a, a) for a single-ended search
            cls = sorted(db.minimum_class(i) for i in ids)
            return cls[0], cls[-1]

        tasks = [(fn, *ids, 1 + done.get(key(ids), 0)) for fn, *ids in tasks]
        for att in workers.map_tasks(lambda t: t[0](pot, db, *t[1:], c, search), tasks):
            merge(db, pot, att, stats)
            db.set("connect_stats", stats)
            db.commit()

    def descend() -> None:
        """Descent bands from the global minimum to each of the lowest ``descend_lowest`` classes,
        their images quenched, round after round until every such pair has had its band (a
        round's new minima may change the global minimum and the lowest classes)."""
        done = {tuple(p) for p in db.get("descent_pairs", [])}
        while not out_of_time():
            low = sorted(set(db.minima.sym), key=lambda cl: (db.minima.loss[cl - 1], cl))[: c.descend_lowest]
            pairs = [(low[0], b) for b in low[1:] if (low[0], b) not in done]
            if not pairs:
                break
            n = len(db.minima.ids)
            for pair, found in zip(pairs, workers.map_tasks(lambda p: descent_band(pot, db, *p, c, search), pairs)):
                m = len(db.minima.ids)
                quench.store(db, pot, found, -1, stats)
                done.add(pair)
                stats["descent_bands"] += 1
                stats["descent_minima"] += len(db.minima.ids) - m
                db.set("descent_pairs", sorted(done))
                db.set("connect_stats", stats)
                db.commit()
            log.info("descent: bands from the global minimum to %d of the lowest %d classes, %d new minima; lowest "
                     "loss %.8f", len(pairs), c.descend_lowest, len(db.minima.ids) - n, min(db.minima.loss))

    def join() -> None:
        """Dijkstra cycles, then single-ended searches, until every class is joined or nothing is
        left to try."""
        nonlocal last_log
        while budget_left():
            if c.descend_lowest:
                descend()
            g = _Graph(db, dist)
            aimed = db.get("target_cycles", {})  # class id (str) -> cycles whose paths led to it
            retired = np.array([aimed.get(str(cl), 0) >= c.target_cycles for cl in g.classes])
            m = missing_connections(g.loss, g.dist, g.direct, g.tries, c.attempts_per_pair, PATHS_PER_CYCLE,
                                    c.connect_lowest, retired)
            if time.monotonic() - last_log > 5:
                last_log = time.monotonic()
                log.info("connect: %d minima, %d transition states, %d classes unconnected to the global minimum, "
                         "%d attempts (pairs and single-ended)", len(db.minima.ids), len(db.ts.ids), m.unconnected,
                         sum(g.attempts.values()))
            if not m.pairs:  # no double-ended route left: single-ended searches from the lowest stuck class
                stuck = [g.classes[i] for i in np.argsort(g.loss, kind="stable")[: c.connect_lowest]
                         if g.component[i] != g.component[g.gmin]
                         and g.attempts.get((g.classes[i],) * 2, 0) < c.attempts_per_pair]
                if not stuck:
                    break
                cycle([(search_single, stuck[0])])
                continue
            left = c.max_pairs - sum(g.attempts.values())
            for i in m.targets:
                aimed[str(g.classes[i])] = aimed.get(str(g.classes[i]), 0) + 1
            db.set("target_cycles", aimed)
            cycle([(search_pair, g.classes[u], g.classes[v]) for u, v in m.pairs[:left]])

    def grow() -> None:
        """The closest untried pairs among the lowest classes, GROW_CYCLE per cycle."""
        while db.get("grow_done", 0) < c.grow_pairs and not out_of_time():
            cov = class_coverage(db.ts_found_classes())
            if c.ts_coverage and cov.coverage >= c.ts_coverage:
                log.info("transition-state coverage %.3f reached the target %.3f (%d found, %d classes, Chao1 %.0f)",
                         cov.coverage, c.ts_coverage, cov.n, cov.classes, cov.chao)
                break
            g = _Graph(db, dist)
            low = np.argsort(g.loss, kind="stable")[: c.grow_lowest]
            cand = sorted((g.dist[u, v], g.classes[u], g.classes[v]) for i, u in enumerate(low) for v in low[i + 1:]
                          if not g.direct[u, v] and not g.tries[u, v])
            if not cand:
                break
            take = cand[: min(GROW_CYCLE, c.grow_pairs - db.get("grow_done", 0))]
            db.set("grow_done", db.get("grow_done", 0) + len(take))
            cycle([(search_pair, cu, cv) for _, cu, cv in take])

    join()
    if db.get("grown_with") != c.grow_pairs:  # a run resumed after its grow phase does not grow again
        grow()
        db.set("grown_with", c.grow_pairs)
        db.commit()
    join()  # the classes that the grow phase found
    g = _Graph(db, dist)
    stats.update(
        seconds=time.monotonic() - t0,
        pair_attempts=int(sum(g.attempts.values())),
        connected_to_gmin=int((g.component == g.component[g.gmin]).sum()),
        classes=len(g.classes),
        ts_coverage=class_coverage(db.ts_found_classes()).as_dict(),
    )
    log.info("connect finished: %d minima, %d transition states; %d of %d classes connected to the global minimum",
             len(db.minima.ids), len(db.ts.ids), stats["connected_to_gmin"], stats["classes"])
    return stats
