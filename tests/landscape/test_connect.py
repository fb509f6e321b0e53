from dataclasses import replace

import numpy as np
import pytest
import torch

from losslandscapes.landscape import basinhopping
from losslandscapes.landscape import connect
from losslandscapes.transition_states import neb
from losslandscapes.landscape import quench
from losslandscapes.storage.database import Database
from losslandscapes.transition_states.spectra import lowest_eigenpairs
from losslandscapes.potentials.mlp import MLPLoss, Potential
from losslandscapes.landscape.symmetry import NetworkSymmetry

from fixtures import MullerBrown, NoSymmetry  # tests/fixtures.py
import settings  # tests/settings.py: config.yaml's search and connect

MB_SADDLES = np.array([[-0.822002, 0.624313], [0.212487, 0.292988]])
MB_SEARCH = settings.search(memory=4, max_step=0.05, quench_gtol=1e-6, tight_gtol=1e-9)
MB_CONNECT = settings.connect(images_per_unit=20, min_images=10, max_images=40, spring=100.0, neb_iter=500, neb_rms=1e-2,
                     max_uphill_step=0.05, max_tangent_step=0.05, grow_pairs=5)


def mb_database(path):
    pot = MullerBrown()
    db = Database(path, {"test": "mb"}, NoSymmetry(), 1e-6, 1e-3)
    starts = torch.tensor([[-0.5, 1.5], [0.6, 0.0], [0.0, 0.5]], dtype=torch.float64)
    stats = basinhopping.new_stats()
    assert (quench.settle(db, pot, starts, MB_SEARCH, 0, stats) >= 0).all()
    db.commit()
    return pot, db


def assert_both_saddles_connect_all(stats, db):
    assert stats["connected_to_gmin"] == 3
    ts = db.ts_frame()
    found = np.stack(ts["params"].to_numpy())
    for s in MB_SADDLES:
        assert np.linalg.norm(found - s, axis=1).min() < 1e-5
    assert (ts["n_neg_eig"] == 1).all()


def test_muller_brown_both_saddles_found_and_connected(tmp_path):
    pot, db = mb_database(tmp_path / "mb.sqlite")
    assert_both_saddles_connect_all(connect.run(pot, db, MB_CONNECT, MB_SEARCH), db)


def test_killed_connect_resumes(tmp_path, monkeypatch):
    """Killed after its first merged attempt (whatever else its cycle computed is lost), a run
    resumes from the committed database and keeps every transition state it had."""
    path = tmp_path / "mb.sqlite"
    pot, db = mb_database(path)
    real_merge = connect.merge
    merged = []

    def dying_merge(*a, **k):
        if merged:
            raise KeyboardInterrupt("killed")
        merged.append(1)
        return real_merge(*a, **k)

    monkeypatch.setattr(connect, "merge", dying_merge)
    with pytest.raises(KeyboardInterrupt):
        connect.run(pot, db, MB_CONNECT, MB_SEARCH)
    db.con.rollback()
    before = db.ts_frame()
    db.close()
    monkeypatch.setattr(connect, "merge", real_merge)
    pot, db = MullerBrown(), Database(path, {"test": "mb"}, NoSymmetry(), 1e-6, 1e-3)
    assert len(db.ts.ids) == len(before) >= 1 and sum(db.attempts().values()) == 1
    stats = connect.run(pot, db, MB_CONNECT, MB_SEARCH)
    after = db.ts_frame()
    assert stats["connected_to_gmin"] == 3
    assert np.array_equal(np.stack(after["params"][: len(before)]), np.stack(before["params"]))


def test_missing_connection_routes_through_joined_classes():
    # class 0 is the global minimum, 1 is joined to it; 2 lies next to 1 and far from 0
    loss = np.array([0.0, 0.1, 0.2, 0.3])
    pts = np.array([0.0, 5.0, 5.5, 20.0])
    dist = np.abs(pts[:, None] - pts[None, :])
    direct = np.zeros((4, 4), bool)
    direct[0, 1] = direct[1, 0] = True
    none = np.zeros((4, 4), int)
    def step(tries, *args, **kw):
        m = connect.missing_connections(loss, dist, direct, tries, 1, *args, **kw)
        return m.pairs, m.targets, m.unconnected

    assert step(none) == ([(2, 1)], [2], 2)
    used = none.copy()
    used[1, 2] = used[2, 1] = 1  # then the next-best route to 2 goes through 0
    assert step(used) == ([(2, 0)], [2], 2)
    used[:, 2] = used[2, :] = 1  # 2 has no untried pair left: 3 is next
    assert step(used)[:2] == ([(3, 1)], [3])
    used[:, 3] = used[3, :] = 1
    assert step(used) == ([], [], 2)
    # only the lowest three classes are targets: 3 is neither attempted nor counted
    assert step(none, 4, lowest=3) == ([(2, 1)], [2], 1)
    # a retired target is skipped but still counted, and paths may still pass through it
    assert step(none, 1, retired=np.array([False, False, True, False])) == ([(3, 2), (2, 1)], [3], 2)


def test_missing_connection_spreads_tries_over_pairs():
    # 2 lies 1.0 from the joined class 1 and 1.2 from the global minimum 0 (squared: 1 and 1.44)
    loss = np.array([0.0, 0.1, 0.2])
    dist = np.array([[0.0, 1.0, 1.2], [1.0, 0.0, 1.0], [1.2, 1.0, 0.0]])
    direct = np.array([[False, True, False], [True, False, False], [False, False, False]])
    tries = np.zeros((3, 3), int)
    def pairs(tries):
        return connect.missing_connections(loss, dist, direct, tries, 8).pairs

    tries[1, 2] = tries[2, 1] = 1  # a second try costs as much as a first
    assert pairs(tries) == [(2, 1)]
    tries[1, 2] = tries[2, 1] = 2  # a third costs 2 against 1.44: the untried pair first
    assert pairs(tries) == [(2, 0)]
    tries[0, 2] = tries[2, 0] = 2  # both tried twice: the closer again
    assert pairs(tries) == [(2, 1)]


def test_grow_stops_when_transition_states_repeat(tmp_path):
    """Every stored transition state is recorded as found; the grow phase stops once the coverage
    of the classes found reaches its target, and runs its pairs without one."""
    grow = {}
    for target in (0.9, None):
        pot, db = mb_database(tmp_path / f"{target}.sqlite")
        connect.run(pot, db, replace(MB_CONNECT, grow_pairs=0), MB_SEARCH)  # joins all three minima
        found = db.ts_found_classes()
        assert len(found) >= len(db.ts.ids) and set(found) == set(db.ts.sym)
        for i in db.ts.ids:  # every class found twice: coverage 1
            db.add_ts_found(i)
        stats = connect.run(pot, db, replace(MB_CONNECT, grow_pairs=40, ts_coverage=target), MB_SEARCH)
        assert stats["ts_coverage"]["coverage"] == 1.0
        grow[target] = db.get("grow_done", 0)
    assert grow == {0.9: 0, None: 1}  # one untried pair is left to grow


@pytest.fixture(scope="module")
def small_landscape(tmp_path_factory):
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 3, (80, 2))
    y = (X[:, 0] + X[:, 1] > 3).astype(int) + 2 * (X[:, 0] > 1.5)
    pot = MLPLoss((2, 3, 4), X, y, 1e-3)
    search = settings.search(chains=4, steps=3, quench_gtol=1e-5, tight_gtol=1e-9, max_iter=20000)
    c = settings.connect(max_pairs=6, grow_pairs=2)
    db = Database(tmp_path_factory.mktemp("nn") / "db.sqlite", {"t": 1}, NetworkSymmetry((2, 3, 4)), 1e-6, 0.1)
    basinhopping.run(pot, db, search, seed=1, device=torch.device("cpu"))
    connect.run(pot, db, c, search)
    return pot, db, search


def test_every_stored_minimum_is_a_minimum(small_landscape):
    pot, db, _ = small_landscape
    mins = db.minima_frame()
    assert len(mins) >= 2
    for x in mins["params"]:
        x = torch.tensor(x)
        assert lowest_eigenpairs(pot, x)[2] == 0
        assert float(pot.value_and_grad(x[None])[1].norm() / pot.P**0.5) < 1e-8


def steepest_descent_minimum(fg, x: np.ndarray) -> np.ndarray:
    """An independent reference: the end of the steepest-descent path dx/dt = -g from ``x``,
    integrated by a stiff adaptive solver (LSODA, relative tolerance 1e-8) until the RMS gradient
    is below 1e-9 (no step method of the package's)."""
    from scipy.integrate import solve_ivp

    def converged(t, w):
        return np.sqrt(np.mean(fg(w)[1] ** 2)) - 1e-9
    converged.terminal = True
    sol = solve_ivp(lambda t, w: -fg(w)[1], (0.0, 1e9), x, method="LSODA", rtol=1e-8, atol=1e-10, events=converged)
    assert sol.status == 1
    return sol.y[:, -1]


def test_every_ts_is_index_one_and_joins_the_minima_steepest_descent_reaches(small_landscape):
    """Each stored transition state has one negative Hessian eigenvalue, and the steepest-descent
    paths that leave it along its negative mode (followed by an independent descent on the torch
    reference loss) end in the classes of its two stored minima."""
    pot, db, _ = small_landscape
    ref = MLPLoss(pot.sizes, pot.X.numpy(), pot.y.numpy(), pot.lam, backend="torch")

    def fg(w):
        f, g = ref.value_and_grad(torch.tensor(w[None]))
        return float(f[0]), g[0].numpy()

    ts = db.ts_frame()
    assert len(ts) >= 1
    classes = sorted(set(db.minima.sym))
    for r in ts.itertuples():
        x = torch.tensor(r.params)
        evals, vecs, n_neg = lowest_eigenpairs(pot, x, k=1)
        assert n_neg == 1 and evals[0] < 0
        ends = []
        for sign in (1, -1):
            m = steepest_descent_minimum(fg, r.params + sign * 0.01 * vecs[:, 0])
            dist = [db.symmetry.align(m, db.minima.x[c - 1])[1] for c in classes]
            assert min(dist) < 0.1  # the path ends at a stored minimum
            ends.append(classes[int(np.argmin(dist))])
        assert sorted(ends) == sorted([db.minimum_class(r.min1), db.minimum_class(r.min2)])


class SideBasin(Potential):
    """f = V(x) + 2 y^2 with V' = 1000 (x + 0.5) x (x - 0.06) (x - 0.09) (x - 1): a transition state at
    the origin between a minimum at x = -0.5 and a narrow side basin at x = 0.06, whose ridge at
    x = 0.09 is only 1.8e-4 above it; the deep minimum at x = 1 lies behind the ridge."""

    V = np.polynomial.Polynomial.fromroots([-0.5, 0.0, 0.06, 0.09, 1.0]).integ() * 1000

    def __init__(self):
        self.P, self.device = 2, torch.device("cpu")

    def value(self, q):
        x = q[:, 0]
        return sum(c * x**k for k, c in enumerate(self.V.coef)) + 2 * q[:, 1] ** 2


def test_push_off_descent_follows_the_path_into_a_narrow_side_basin(tmp_path):
    pot = SideBasin()
    db = Database(tmp_path / "side.sqlite", {"test": "side"}, NoSymmetry(), 1e-9, 1e-3)
    search = settings.search(memory=10, max_step=0.5, quench_gtol=1e-6, tight_gtol=1e-10)
    start = torch.tensor([[0.01, 0.0]], dtype=torch.float64)  # the push-off along +x from the TS at 0
    # Newton-like steps (a fresh Hessian each) straight from the push-off (what push-offs did
    # before) jump the ridge ...
    from losslandscapes.transition_states.ef import eigenvector_following

    newton = eigenvector_following(pot, start[0], 0, 1e-10, 200, quench.POLISH_TRUST, quench.POLISH_MAX_TRUST,
                                   max_rise=quench.MAX_RISE)
    assert newton.x[0] > 0.5
    # ... the path-following descent does not
    ids = quench.settle(db, pot, start, search, -1, basinhopping.new_stats(),
                        descent=quench.descent_settings(search, settings.connect()))
    assert ids[0] >= 1 and abs(db.minima.x[ids[0] - 1][0] - 0.06) < 1e-6


def test_single_ended_searches_connect_when_every_pair_is_used_up(tmp_path):
    pot, db = mb_database(tmp_path / "mb.sqlite")
    for a, b in ((1, 2), (1, 3), (2, 3)):  # no double-ended attempt left
        for _ in range(MB_CONNECT.attempts_per_pair):
            db.add_attempt(a, b)
    assert_both_saddles_connect_all(connect.run(pot, db, MB_CONNECT, MB_SEARCH), db)
    assert all(a == b for a, b in db.attempts() if (a, b) not in ((1, 2), (1, 3), (2, 3)))


def test_results_do_not_depend_on_the_number_of_threads(tmp_path):
    """Basin-hopping and connect give the same bits with one worker thread and with two."""
    from losslandscapes import workers

    rng = np.random.default_rng(7)  # the data of small_landscape
    X = rng.uniform(0, 3, (80, 2))
    y = (X[:, 0] + X[:, 1] > 3).astype(int) + 2 * (X[:, 0] > 1.5)
    pot = MLPLoss((2, 3, 4), X, y, 1e-3)
    search = settings.search(chains=4, steps=3, quench_gtol=1e-5, tight_gtol=1e-9)
    frames = []
    for threads in (1, 2):
        workers.set_threads(threads)
        try:
            db = Database(tmp_path / f"t{threads}.sqlite", {"t": 1}, NetworkSymmetry((2, 3, 4)), 1e-6, 0.1)
            basinhopping.run(pot, db, search, seed=1, device=torch.device("cpu"))
            connect.run(pot, db, settings.connect(max_pairs=8, grow_pairs=4), search)
            frames.append((db.minima_frame(), db.ts_frame()))
        finally:
            workers.set_threads(1)
    assert len(frames[0][0]) >= 2 and len(frames[0][1]) >= 1
    for a, b in zip(*frames):
        assert len(a) == len(b) and np.array_equal(np.stack(a["params"]), np.stack(b["params"]))
        assert np.array_equal(a["loss"].to_numpy(), b["loss"].to_numpy())


def test_dneb_gradient_on_a_straight_band_is_the_spring_force_along_it():
    """On f = (x^2 - 1)^2 + y^2 a band along the x axis feels no perpendicular gradient, so the
    DNEB gradient is the spring term alone: -k (|forward| - |backward|) along the axis, zero
    where the images are evenly spaced."""
    x = np.array([-1.0, -0.6, -0.1, 0.2, 0.6, 1.0])
    X = np.stack([x, np.zeros_like(x)], 1)
    E, G = (x**2 - 1) ** 2, np.stack([4 * x * (x**2 - 1), np.zeros_like(x)], 1)
    got = neb.dneb_gradient(X, E, G[1:-1], k=2.0)
    spring = 2.0 * (np.diff(x)[1:] - np.diff(x)[:-1])
    np.testing.assert_allclose(got, np.stack([-spring, np.zeros_like(spring)], 1), atol=1e-15)
    even = np.stack([np.linspace(-1, 1, 6), np.zeros(6)], 1)
    assert np.abs(neb.dneb_gradient(even, E, G[1:-1], k=2.0)).max() < 1e-15


def test_relaxed_band_passes_the_muller_brown_saddle():
    """A straight band between Muller-Brown's minima A and C bends onto the path: its highest
    image is next to the saddle between them (image spacing about 0.06)."""
    pot = MullerBrown()
    a, b = torch.tensor([-0.558224, 1.441726]), torch.tensor([-0.050011, 0.466694])
    X, E = neb.relax_band(pot, a.double(), b.double(), 20, 100.0, 500, 1e-2, max_step=0.05)
    top = X[neb.climbing_candidates(E, 1)[0]].numpy()
    assert np.linalg.norm(top - MB_SADDLES[0]) < 0.05
    assert float(E.max()) == pytest.approx(float(pot.value(torch.tensor(MB_SADDLES[:1]))[0]), abs=1.0)


def test_climbing_image_converges_onto_the_muller_brown_saddle():
    """With a climbing image, the highest image of a coarse band (4 images, spacing about 0.3)
    converges onto the saddle between Muller-Brown's minima A and C itself (to the 6 decimals the
    saddle is given in), where the plain band's highest image stays 0.11 from it, 3.8 lower."""
    pot = MullerBrown()
    a, b = torch.tensor([-0.558224, 1.441726]).double(), torch.tensor([-0.050011, 0.466694]).double()
    saddle = float(pot.value(torch.tensor(MB_SADDLES[:1]))[0])
    far = []
    for climb in (False, True):
        X, E = neb.relax_band(pot, a, b, 4, 100.0, 3000, 1e-6, climb=climb, max_step=0.05)
        far.append(np.linalg.norm(X[int(torch.argmax(E))].numpy() - MB_SADDLES[0]))
    assert far[0] > 0.05
    assert far[1] < 1e-5 and float(E.max()) == pytest.approx(saddle, abs=1e-6)


def test_quench_above_the_exact_limit_verifies_new_minima_inside_its_tasks(tmp_path, rng):
    """Above ``EXACT_LIMIT`` parameters (no eigenvector-following polish) each tightened row's
    spectrum is computed in the quench itself, side by side with the other rows, and is that of an
    independent diagonalisation; a row that ends at a stored minimum needs none."""
    from losslandscapes.transition_states.spectra import EXACT_LIMIT

    sizes = (60, 20, 4)
    X, y = rng.uniform(0, 1, (80, 60)), rng.integers(0, 4, 80)
    pot = MLPLoss(sizes, X, y, 2.0, None, True, backend="numba")
    assert pot.P > EXACT_LIMIT
    db = Database(tmp_path / "big.sqlite", {"test": "big"}, NetworkSymmetry(sizes, pot.free), 1e-6, 1e-3)
    search = settings.search(memory=10, max_step=0.5, quench_gtol=1e-5, tight_gtol=1e-9)
    x0 = torch.tensor(rng.normal(scale=0.05, size=(2, pot.P)))
    out = quench.quench(db, pot, x0, search)
    for q in out:
        evals = np.linalg.eigvalsh(pot.hessian(q.x).numpy())
        assert q.spectrum[1] == 0 and q.spectrum[0] == pytest.approx(evals[0], rel=1e-6)
    stats = basinhopping.new_stats()
    ids = quench.store(db, pot, out, 0, stats)
    assert (ids > 0).all() and stats["not_minimum"] == 0
    again = quench.quench(db, pot, torch.stack([out[0].x, out[1].x]), search)
    assert all(q.known is not None or q.spectrum is None for q in again)


@pytest.mark.parametrize("more", [False, True])
def test_repeated_attempts_climb_and_take_more_images_only_when_asked(tmp_path, monkeypatch, more):
    """A repeated attempt at a pair (k = 2) relaxes a climbing band ``REPEAT_BAND`` times longer;
    its images are those of the first attempt, or twice as many with ``more_images_on_repeats``."""
    pot, db = mb_database(tmp_path / "mb.sqlite")
    bands = []

    def band(pot, xa, xb, n, k, iters, tol, climb=False):
        bands.append((n, iters, climb))
        return neb.relax_band(pot, xa, xb, n, k, iters, tol, climb=climb)

    monkeypatch.setattr(connect, "relax_band", band)
    c = replace(MB_CONNECT, more_images_on_repeats=more)
    for k in (1, 2):
        connect.search_pair(pot, db, 1, 2, k, c, MB_SEARCH)
    (n1, it1, climb1), (n2, it2, climb2) = bands
    assert (it1, climb1, it2, climb2) == (c.neb_iter, False, connect.REPEAT_BAND * c.neb_iter, True)
    assert (n2 >= 2 * n1 - 1) if more else (n2 == n1)


def test_repeated_attempts_store_the_minima_below_their_band(tmp_path):
    """Muller-Brown's band from its lowest minimum to the far one passes through the middle
    minimum's basin: a repeated attempt's quenched images store it (a first attempt's do not)."""
    pot = MullerBrown()
    db = Database(tmp_path / "mb.sqlite", {"test": "mb"}, NoSymmetry(), 1e-6, 1e-3)
    ends = torch.tensor([[-0.5, 1.5], [0.6, 0.0]], dtype=torch.float64)
    assert (quench.settle(db, pot, ends, MB_SEARCH, 0, basinhopping.new_stats()) >= 0).all()
    middle = np.array([-0.050011, 0.466694])  # the Muller-Brown minimum between them
    assert connect.search_pair(pot, db, 1, 2, 1, MB_CONNECT, MB_SEARCH).minima == []
    att = connect.search_pair(pot, db, 1, 2, 2, MB_CONNECT, MB_SEARCH)
    assert any(q.x is not None and np.linalg.norm(q.x.numpy() - middle) < 1e-5 for q in att.minima)
    stats = connect_stats()
    connect.merge(db, pot, att, stats)
    assert stats["band_minima"] == 1 and len(db.minima.ids) == 3


def test_descent_bands_store_the_minima_below_them_before_any_attempt(tmp_path, monkeypatch):
    """With only Muller-Brown's two outer minima stored, the descent band from the global minimum
    to the other passes through the middle minimum's basin, whose quenched images store it before
    the first pair attempt. With ``descend_lowest`` 3 the middle minimum then gets its own band
    (nothing new below it); bands are not pair attempts, and a resumed run makes none again."""
    pot = MullerBrown()
    db = Database(tmp_path / "mb.sqlite", {"test": "mb"}, NoSymmetry(), 1e-6, 1e-3)
    ends = torch.tensor([[-0.5, 1.5], [0.6, 0.0]], dtype=torch.float64)
    assert (quench.settle(db, pot, ends, MB_SEARCH, 0, basinhopping.new_stats()) >= 0).all()
    db.commit()
    middle = np.array([-0.050011, 0.466694])  # the Muller-Brown minimum between them
    seen = []  # minima stored when each pair attempt starts
    real = connect.search_pair
    monkeypatch.setattr(connect, "search_pair", lambda pot, db, *a: seen.append(len(db.minima.ids)) or real(pot, db, *a))
    c = replace(MB_CONNECT, descend_lowest=3, grow_pairs=0)
    stats = connect.run(pot, db, c, MB_SEARCH)
    assert np.linalg.norm(db.minima.x[2] - middle) < 1e-5 and seen[0] == 3
    assert stats["descent_bands"] == 2 and stats["descent_minima"] == 1 and stats["connected_to_gmin"] == 3
    assert db.get("descent_pairs") == [[1, 2], [1, 3]] and sum(db.attempts().values()) == len(seen)
    assert connect.run(pot, db, c, MB_SEARCH)["descent_bands"] == 2


def test_a_run_resumed_after_its_grow_phase_does_not_grow_again(tmp_path, monkeypatch):
    """The grow phase records that it ran (``grown_with``), so a resumed run only joins: with
    ``grow_pairs`` not used up, it would otherwise enter the grow loop again (and measure the
    transition-state coverage on the way)."""
    pot, db = mb_database(tmp_path / "mb.sqlite")
    c = replace(MB_CONNECT, grow_pairs=40, ts_coverage=None)
    connect.run(pot, db, c, MB_SEARCH)
    assert db.get("grow_done") == 1 and db.get("grown_with") == 40  # the one untried pair
    calls = []
    real = connect.class_coverage
    monkeypatch.setattr(connect, "class_coverage", lambda *a: calls.append(1) or real(*a))
    attempts = sum(db.attempts().values())
    connect.run(pot, db, c, MB_SEARCH)
    assert len(calls) == 1 and sum(db.attempts().values()) == attempts  # only the final statistics
    db.set("grown_with", None)
    connect.run(pot, db, c, MB_SEARCH)
    assert len(calls) == 3  # without the marker: the grow loop's coverage check, then the statistics


def test_a_stored_transition_state_found_again_is_counted_without_push_offs(tmp_path):
    pot, db = mb_database(tmp_path / "mb.sqlite")
    connect.run(pot, db, MB_CONNECT, MB_SEARCH)
    ts = db.ts_frame()
    found = len(db.ts_found_classes())
    guess = torch.as_tensor(ts["params"].iloc[0]) + 1e-3  # refines onto the first stored one
    s = connect._saddle(pot, db, guess, MB_CONNECT, MB_SEARCH)
    assert s.known == int(ts["id"].iloc[0]) and s.ends == []
    assert connect.merge(db, pot, connect.Attempt((1, 2), [s], 0, []), connect_stats()) == 1
    assert len(db.ts_frame()) == len(ts) and len(db.ts_found_classes()) == found + 1


def connect_stats() -> dict:
    return {"hef_unconverged": 0, "pushoff_failed": 0, "band_minima": 0, **quench.new_counters()}
