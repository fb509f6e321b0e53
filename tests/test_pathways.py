import numpy as np
import pytest
import torch

from losslandscapes import basinhopping, connect
from losslandscapes.config import Connect, Search
from losslandscapes.database import Database
from losslandscapes.hessian import lowest_eigenpairs
from losslandscapes.potentials import MLPLoss, MullerBrown
from losslandscapes.symmetry import NetworkSymmetry, NoSymmetry

MB_SADDLES = np.array([[-0.822002, 0.624313], [0.212487, 0.292988]])
MB_SEARCH = Search(memory=4, max_step=0.05, quench_gtol=1e-6, tight_gtol=1e-9)
MB_CONNECT = Connect(images_per_unit=20, min_images=10, max_images=40, spring=100.0, neb_iter=500, neb_rms=1e-2,
                     max_uphill_step=0.05, max_tangent_step=0.05, grow_pairs=5)


def mb_database(path):
    pot = MullerBrown()
    db = Database(path, {"test": "mb"}, NoSymmetry(), 1e-6, 1e-3)
    starts = torch.tensor([[-0.5, 1.5], [0.6, 0.0], [0.0, 0.5]], dtype=torch.float64)
    stats = basinhopping.new_stats()
    assert (basinhopping.settle(db, pot, starts, MB_SEARCH, 0, stats) >= 0).all()
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
    path = tmp_path / "mb.sqlite"
    pot, db = mb_database(path)
    real = {name: getattr(connect, name) for name in ("attempt_pair", "attempt_single")}
    calls = []

    def dying(name):
        def search(*a, **k):  # the second search of either kind is killed
            if calls:
                raise KeyboardInterrupt("killed")
            calls.append(name)
            return real[name](*a, **k)
        return search

    for name in real:
        monkeypatch.setattr(connect, name, dying(name))
    with pytest.raises(KeyboardInterrupt):
        connect.run(pot, db, MB_CONNECT, MB_SEARCH)
    db.con.rollback()
    before = db.ts_frame()
    db.close()
    for name, fn in real.items():
        monkeypatch.setattr(connect, name, fn)
    pot, db = MullerBrown(), Database(path, {"test": "mb"}, NoSymmetry(), 1e-6, 1e-3)
    assert len(db.ts.ids) == len(before) >= 1
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
    none = np.zeros((4, 4), bool)
    assert connect.missing_connections(loss, dist, direct, none) == ([(2, 1)], 2)
    used = none.copy()
    used[1, 2] = used[2, 1] = True  # then the next-best route to 2 goes through 0
    assert connect.missing_connections(loss, dist, direct, used) == ([(2, 0)], 2)
    used[:, 2] = used[2, :] = True  # 2 has no untried pair left: 3 is next
    assert connect.missing_connections(loss, dist, direct, used)[0][0][0] == 3
    used[:, 3] = used[3, :] = True
    assert connect.missing_connections(loss, dist, direct, used) == ([], 2)


@pytest.fixture(scope="module")
def small_landscape(tmp_path_factory):
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 3, (80, 2))
    y = (X[:, 0] + X[:, 1] > 3).astype(int) + 2 * (X[:, 0] > 1.5)
    pot = MLPLoss((2, 3, 4), X, y, 1e-3)
    search = Search(chains=4, steps=3, quench_gtol=1e-5, tight_gtol=1e-9, max_iter=20000)
    c = Connect(max_pairs=6, grow_pairs=2)
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


def test_every_ts_is_index_one_and_descends_to_its_minima(small_landscape):
    pot, db, search = small_landscape
    ts = db.ts_frame()
    assert len(ts) >= 1
    for r in ts.itertuples():
        x = torch.tensor(r.params)
        evals, vecs, n_neg = lowest_eigenpairs(pot, x, k=1)
        assert n_neg == 1 and evals[0] < 0
        v = torch.tensor(vecs[:, 0])
        stats = basinhopping.new_stats()
        ids = basinhopping.settle(db, pot, torch.stack([x + 0.01 * v, x - 0.01 * v]), search, -1, stats, quench=False)
        assert sorted(ids.tolist()) == sorted([r.min1, r.min2])


def test_single_ended_searches_connect_when_every_pair_is_used_up(tmp_path):
    pot, db = mb_database(tmp_path / "mb.sqlite")
    for a, b in ((1, 2), (1, 3), (2, 3)):  # no double-ended attempt left
        for _ in range(MB_CONNECT.attempts_per_pair):
            db.add_attempt(a, b)
    assert_both_saddles_connect_all(connect.run(pot, db, MB_CONNECT, MB_SEARCH), db)
    assert all(a == b for a, b in db.attempts() if (a, b) not in ((1, 2), (1, 3), (2, 3)))
