"""Disconnectivity graphs (Becker & Karplus 1997; Wales, Miller & Walsh 1998).

At levels ``E_l = E_top - l * delta`` the minima below the level that are joined by transition
states below it form one node (union-find). Each node is drawn from its parent's position at the
level above; a node holding a single minimum ends at that minimum's loss. At every node the
child holding the lowest minimum is placed in the middle, and the branches that split off a
node go to alternate sides split by split, so the global minimum's funnel is central.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    if len(pairs) == 0:
        return np.arange(n)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1]


def class_graph(minima: pd.DataFrame, ts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The landscape over symmetry classes (permutation and sign images of one minimum are one
    minimum, as PATHSAMPLE merges isomers): ``reps[C]`` representative minimum ids, their losses
    ``energy[C]``, and the transition states between two different classes, ``ts_energy[M]`` and
    ``ts_pairs[M, 2]`` (class positions). ``minima``/``ts``: the landscape's Parquet tables."""
    reps = np.unique(minima["sym_class"].to_numpy())
    cls = np.searchsorted(reps, minima["sym_class"].to_numpy())  # class position of each minimum
    if len(ts) == 0:
        return reps, minima["loss"].to_numpy()[reps - 1], np.zeros(0), np.zeros((0, 2), int)
    ends = cls[np.stack([ts["min1"].to_numpy() - 1, ts["min2"].to_numpy() - 1], 1)]
    between = ends[:, 0] != ends[:, 1]
    return reps, minima["loss"].to_numpy()[reps - 1], ts["loss"].to_numpy()[between], ends[between]


def gmin_funnel(min_energy: np.ndarray, ts_energy: np.ndarray, ts_pairs: np.ndarray) -> tuple[int, float]:
    """(minima connected to the global minimum, share of them whose monotonic sequence drains into
    it). A minimum's monotonic sequence steps to the lower neighbour behind its lowest transition
    state until no neighbour is lower; a single-funnelled landscape drains every minimum into the
    global minimum."""
    n, gmin = len(min_energy), int(np.argmin(min_energy))
    comp = _components(n, np.asarray(ts_pairs, int).reshape(-1, 2))
    keep = np.flatnonzero(comp == comp[gmin])
    down = np.arange(n)  # next minimum of each monotonic sequence
    best = np.full(n, np.inf)
    for e, (a, b) in zip(ts_energy, np.asarray(ts_pairs, int).reshape(-1, 2)):
        for u, v in ((a, b), (b, a)):
            if min_energy[v] < min_energy[u] and e < best[u]:
                best[u], down[u] = e, v
    ends = keep.copy()
    for _ in range(n):  # energies fall along every step, so n steps reach every bottom
        ends = down[ends]
    return len(keep), float(np.mean(ends == gmin))


def tree(min_energy: np.ndarray, ts_energy: np.ndarray, ts_pairs: np.ndarray, n_levels: int = 25) -> pd.DataFrame:
    """Nodes of the disconnectivity graph of the minima connected to the global minimum.

    ``ts_pairs[m, 2]`` are 0-based minimum indices. Returns one row per node: ``node, level,
    energy, parent, minimum`` (index of the minimum where the node is a leaf, else -1),
    ``lowest`` (its lowest minimum), ``n_minima``, ``x``; leaves also give ``leaf_energy``.
    """
    min_energy = np.asarray(min_energy, float)
    ts_energy = np.asarray(ts_energy, float)
    ts_pairs = np.asarray(ts_pairs, int).reshape(-1, 2)
    n = len(min_energy)
    gmin = int(np.argmin(min_energy))
    comp = _components(n, ts_pairs)
    keep = np.flatnonzero(comp == comp[gmin])
    if len(keep) == 1 or len(ts_energy) == 0:
        return pd.DataFrame([{"node": 0, "level": 0, "energy": float(min_energy[gmin]), "parent": -1, "minimum": gmin,
                              "lowest": gmin, "n_minima": 1, "x": 0.0, "leaf_energy": float(min_energy[gmin])}])
    inside = np.isin(ts_pairs, keep).all(1)
    te, tp = ts_energy[inside], ts_pairs[inside]
    top = te.max()
    delta = (top - min_energy[keep].min()) / n_levels
    top += 0.5 * delta
    levels = top - delta * np.arange(n_levels + 1)
    rows, prev_of = [], {}  # prev_of: representative set key -> node id at previous level
    for li, E in enumerate(levels):
        alive = keep[min_energy[keep] < E]
        if len(alive) == 0:
            break
        c = _components(n, tp[te < E])
        groups: dict[int, list[int]] = {}
        for m in alive:
            groups.setdefault(int(c[m]), []).append(int(m))
        cur = {}
        for members in sorted(groups.values(), key=lambda g: min_energy[g].min()):
            lowest = int(members[np.argmin(min_energy[members])])
            parent = prev_of.get(lowest, -1)
            if parent >= 0 and rows[parent]["n_minima"] == 1:
                continue  # a leaf already ended above
            node = len(rows)
            rows.append({"node": node, "level": li, "energy": float(E), "parent": parent,
                         "minimum": lowest if len(members) == 1 else -1, "lowest": lowest,
                         "n_minima": len(members), "members": members})
            for m in members:
                cur[m] = node
        for m, node in prev_of.items():  # leaves stay leaves
            if m not in cur and rows[node]["n_minima"] == 1:
                cur[m] = node
        prev_of = cur
    df = pd.DataFrame(rows)
    df["leaf_energy"] = [float(min_energy[m]) if m >= 0 else np.nan for m in df["minimum"]]
    df["x"] = _layout(df, min_energy)
    return df.drop(columns="members")


def _layout(df: pd.DataFrame, energy: np.ndarray) -> np.ndarray:
    children: dict[int, list[int]] = {}
    for node, parent in zip(df["node"], df["parent"]):
        children.setdefault(int(parent), []).append(int(node))
    lowest = df["lowest"].to_numpy()
    x = np.zeros(len(df))
    counter = [0.0]

    def order(kids, flip: bool):  # lowest child in the middle, the others alternating outwards,
        kids = sorted(kids, key=lambda k: energy[lowest[k]])  # starting on the side set by ``flip``
        out: list[int] = []
        for i, k in enumerate(kids):
            out = out + [k] if (i % 2 == 0) != flip else [k] + out
        return out

    def place(node, splits):  # splits: branchings above this node
        kids = children.get(node, [])
        if not kids:
            x[node] = counter[0]
            counter[0] += 1
            return
        for k in order(kids, splits % 2 == 1):  # side branches alternate sides split by split
            place(k, splits + (len(kids) > 1))
        centre = [k for k in kids if lowest[k] == lowest[node]]
        x[node] = x[centre[0]] if centre else np.mean([x[k] for k in kids])

    for root in order(children.get(-1, []), False):
        place(root, 0)
    return x
