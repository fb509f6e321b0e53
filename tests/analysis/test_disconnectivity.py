"""Disconnectivity graphs and barriers on databases whose graph is known by hand, and against an
independent minimax-path computation (Floyd-Warshall over max instead of +)."""

import numpy as np
import pytest

from losslandscapes.analysis.disconnectivity import barriers_to_gmin, funnel_share, prune, tree

# the four-minimum toy: minima 0, 0.3, 0.6, 0.9; TS 0-1 at 0.31, 1-2 at 2.0, 2-3 at 0.91
TOY = (np.array([0.0, 0.3, 0.6, 0.9]), np.array([0.31, 2.0, 0.91]), np.array([[0, 1], [1, 2], [2, 3]]))


def minimax(energy, ts_energy, pairs):
    """b[i, j]: the lowest possible highest transition state on a path from i to j (inf: none)."""
    n = len(energy)
    b = np.full((n, n), np.inf)
    for t, (i, j) in zip(ts_energy, pairs):
        b[i, j] = b[j, i] = min(b[i, j], t)
    for k in range(n):
        b = np.minimum(b, np.maximum(b[:, k : k + 1], b[k : k + 1, :]))
    return b


def random_landscape(seed, n=30, m=45):
    rng = np.random.default_rng(seed)
    energy = rng.uniform(0, 1, n)
    pairs = rng.integers(0, n, (m, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    ts_energy = np.maximum(energy[pairs[:, 0]], energy[pairs[:, 1]]) + rng.exponential(0.3, len(pairs))
    return energy, ts_energy, pairs


def ancestors(nodes, node):
    parent = dict(zip(nodes["node"], nodes["parent"]))
    out = [node]
    while parent[out[-1]] >= 0:
        out.append(parent[out[-1]])
    return out


def check_tree(energy, ts_energy, pairs, n_levels):
    nodes = tree(energy, ts_energy, pairs, n_levels)
    b = minimax(energy, ts_energy, pairs)
    gmin = int(np.argmin(energy))
    connected = {gmin} | set(np.flatnonzero(np.isfinite(b[gmin])).tolist())
    leaves = nodes[nodes["minimum"] >= 0]
    assert sorted(leaves["minimum"]) == sorted(connected)  # each connected minimum exactly once
    assert np.array_equal(leaves["leaf_energy"].to_numpy(), energy[leaves["minimum"].to_numpy()])
    assert (leaves["energy"] >= leaves["leaf_energy"]).all()  # a branch runs down to its minimum
    inner = nodes[nodes["minimum"] < 0]
    assert (inner["n_minima"] >= 2).all()
    top = max(ts_energy[np.isin(pairs, list(connected)).all(1)].max(), energy[list(connected)].max())
    delta = (top - energy[gmin]) / n_levels
    leaf_of = dict(zip(leaves["minimum"], leaves["node"]))
    energy_of = dict(zip(nodes["node"], nodes["energy"]))
    for i in connected:
        up_i = ancestors(nodes, leaf_of[i])
        for j in connected:
            if j <= i:
                continue
            meet = next(a for a in ancestors(nodes, leaf_of[j]) if a in up_i)
            assert energy_of[meet] > b[i, j] >= energy_of[meet] - delta - 1e-12, (i, j)
    return nodes


def test_toy_draws_every_minimum_and_merges_at_the_barriers():
    nodes = check_tree(*TOY, n_levels=8)
    leaves = nodes[nodes["minimum"] >= 0].set_index("minimum")
    assert len(leaves) == 4
    # 0.9 leaves its node when the level passes below 0.9 and ends at its own loss
    assert leaves.loc[3, "energy"] == 0.9
    root = nodes[nodes["parent"] < 0]
    assert len(root) == 1 and root["x"].iloc[0] == leaves.loc[0, "x"]  # the global minimum under the root


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n_levels", [3, 25])
def test_random_landscapes_leaves_are_the_connected_minima(seed, n_levels):
    check_tree(*random_landscape(seed), n_levels)


def test_unconnected_minima_are_not_drawn():
    # minima A=0.0, B=1.0, C=0.5, D=2.0, E=0.2; TS A-B 3.0, B-C 4.0, C-D 2.5; E has no TS
    energy = np.array([0.0, 1.0, 0.5, 2.0, 0.2])
    nodes = check_tree(energy, np.array([3.0, 4.0, 2.5]), np.array([[0, 1], [1, 2], [2, 3]]), 8)
    assert 4 not in set(nodes["minimum"])


def test_single_minimum_is_one_leaf():
    nodes = tree(np.array([0.5, 0.1]), np.zeros(0), np.zeros((0, 2), int))
    assert nodes["minimum"].tolist() == [1] and nodes["parent"].tolist() == [-1]


def test_barriers_equal_an_independent_minimax():
    for seed in range(6):
        energy, ts_energy, pairs = random_landscape(seed)
        gmin = int(np.argmin(energy))
        expected = minimax(energy, ts_energy, pairs)[gmin]
        expected[gmin] = energy[gmin]
        assert np.array_equal(barriers_to_gmin(energy, ts_energy, pairs), expected)


def test_funnel_share_by_barriers():
    # 0.3 is 0.01 below its way to 0 (in the funnel); 0.6 and 0.9 are 1.4 and 1.1 below it (not)
    assert funnel_share(*TOY) == (4, pytest.approx(1 / 3))
    energy = np.array([0.0, 1.0, 1.5, 0.5])
    ts_e, pairs = np.array([2.0, 3.0, 2.2, 4.0]), np.array([[0, 1], [1, 3], [2, 3], [0, 2]])
    # barriers towards 0: minimum 1 at 2.0 (1.0 above it, not below its gap 1.0); 3 at 3.0 through 1
    # (2.5 above it, gap 0.5); 2 at 3.0 through 3 and 1 (1.5 above it, gap 1.5): none in the funnel
    assert funnel_share(energy, ts_e, pairs) == (4, 0.0)
    assert funnel_share(energy, np.array([0.9]), np.array([[0, 3]])) == (2, 1.0)  # 0.4 < 0.5
    connected, share = funnel_share(energy, np.zeros(0), np.zeros((0, 2), int))
    assert connected == 1 and np.isnan(share)


def test_prune_keeps_the_lowest_classes_and_their_merges():
    nodes = tree(*TOY, n_levels=8)
    low = prune(nodes, [0, 1])
    assert sorted(low.loc[low["minimum"] >= 0, "minimum"]) == [0, 1]
    root = low[low["parent"] < 0]
    assert len(root) == 1 and int(root["n_minima"].iloc[0]) == 2
    assert 0.31 < float(root["energy"].iloc[0]) < 0.31 + 2.0 / 8  # the root is where 0 and 1 meet
    assert set(low["parent"]) - {-1} <= set(low["node"])
    single = prune(nodes, [0])
    assert single["minimum"].tolist() == [0]
