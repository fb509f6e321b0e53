"""Disconnectivity graphs (Becker & Karplus 1997; Wales, Miller & Walsh 1998) and barriers.

At levels ``E_l = E_top - l * delta`` the minima below the level that are joined by transition
states below it form one node (union-find). Every minimum connected to the global minimum is one
leaf: its branch leaves the lowest node that still holds other minima and ends at the minimum's
own loss, so two minima meet at the first level above the lowest barrier between them. At every
node the child holding the lowest minimum is placed in the middle, and the branches that split
off a node go to alternate sides split by split, so the global minimum's funnel is central.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NODE_COLUMNS = ["node", "level", "energy", "parent", "minimum", "lowest", "n_minima", "leaf_energy", "x"]


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
    energy = minima["loss"].to_numpy()[reps - 1]
    if len(ts) == 0:
        return reps, energy, np.zeros(0), np.zeros((0, 2), int)
    ends = cls[np.stack([ts["min1"].to_numpy() - 1, ts["min2"].to_numpy() - 1], 1)]
    between = ends[:, 0] != ends[:, 1]
    return reps, energy, ts["loss"].to_numpy()[between], ends[between]


def barriers_to_gmin(min_energy: np.ndarray, ts_energy: np.ndarray, ts_pairs: np.ndarray) -> np.ndarray:
    """``b[n]``: the highest transition state on the lowest path from each minimum to the global
    minimum (the minimax path; inf where none joins them, the global minimum's own loss for it).
    Transition states are added in order of energy and a minimum's barrier is the one that first
    puts it in the global minimum's component (Kruskal)."""
    min_energy = np.asarray(min_energy, float)
    pairs = np.asarray(ts_pairs, int).reshape(-1, 2)
    n, gmin = len(min_energy), int(np.argmin(min_energy))
    parent = np.arange(n)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    b = np.full(n, np.inf)
    b[gmin] = min_energy[gmin]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in np.argsort(ts_energy, kind="stable"):
        ra, rb = root(pairs[k, 0]), root(pairs[k, 1])
        if ra == rb:
            continue
        g = root(gmin)
        if g in (ra, rb):
            b[members[rb if g == ra else ra]] = ts_energy[k]
        big, small = (ra, rb) if len(members[ra]) >= len(members[rb]) else (rb, ra)
        parent[small] = big
        members[big] += members.pop(small)
    return b


def funnel_share(min_energy: np.ndarray, ts_energy: np.ndarray, ts_pairs: np.ndarray) -> tuple[int, float]:
    """(minima connected to the global minimum, share of the others that lie in its funnel). A
    minimum lies in the funnel when its barrier towards the global minimum (``barriers_to_gmin``
    minus its own loss) is smaller than its height above the global minimum: the way down is
    cheaper than the drop it leads to (docs/methods.md §8). NaN when nothing is connected."""
    min_energy = np.asarray(min_energy, float)
    b = barriers_to_gmin(min_energy, ts_energy, ts_pairs)
    gmin = int(np.argmin(min_energy))
    others = np.isfinite(b) & (np.arange(len(b)) != gmin)
    if not others.any():
        return 1, float("nan")
    gap = min_energy[others] - min_energy[gmin]
    return int(others.sum()) + 1, float(np.mean(b[others] - min_energy[others] < gap))


def tree(min_energy: np.ndarray, ts_energy: np.ndarray, ts_pairs: np.ndarray, n_levels: int = 25) -> pd.DataFrame:
    """Nodes of the disconnectivity graph of the minima connected to the global minimum.

    ``ts_pairs[m, 2]`` are 0-based minimum indices. Returns one row per node (``NODE_COLUMNS``):
    ``level`` and ``energy`` of its top, ``parent`` (-1 for the root), ``minimum`` (the minimum
    of a leaf, else -1), ``lowest`` (its lowest minimum), ``n_minima``, ``leaf_energy`` (leaves:
    the minimum's loss, else NaN) and ``x``. Each connected minimum is exactly one leaf; a leaf
    starts at the first level where it is alone, or at its own loss when that lies above the next
    level (then the branch from its parent ends at the minimum).
    """
    e = np.asarray(min_energy, float)
    ts_energy = np.asarray(ts_energy, float)
    ts_pairs = np.asarray(ts_pairs, int).reshape(-1, 2)
    n, gmin = len(e), int(np.argmin(e))
    comp = _components(n, ts_pairs)
    keep = np.flatnonzero(comp == comp[gmin])
    rows: list[dict] = []

    def add(level: int, energy: float, parent: int, members: list[int]) -> int:
        lowest = members[int(np.argmin(e[members]))]
        leaf = len(members) == 1
        rows.append({"node": len(rows), "level": level, "energy": float(energy), "parent": parent,
                     "minimum": lowest if leaf else -1, "lowest": lowest, "n_minima": len(members),
                     "leaf_energy": float(e[lowest]) if leaf else np.nan})
        return len(rows) - 1

    if len(keep) == 1:
        add(0, e[gmin], -1, [gmin])
        return _finish(rows)
    inside = np.isin(ts_pairs, keep).all(1)
    te, tp = ts_energy[inside], ts_pairs[inside]
    top = max(te.max(), e[keep].max())
    delta = (top - e[gmin]) / n_levels
    levels = top + 0.5 * delta - delta * np.arange(n_levels + 1)
    open_nodes = {add(0, levels[0], -1, keep.tolist()): keep.tolist()}  # nodes holding 2+ minima
    for li in range(1, n_levels + 2):
        E = levels[li] if li <= n_levels else -np.inf  # below the last level every minimum ends
        c = _components(n, tp[te < E])
        still_open = {}
        for node, members in open_nodes.items():
            groups: dict[int, list[int]] = {}
            for m in members:
                if e[m] < E:
                    groups.setdefault(int(c[m]), []).append(m)
                else:  # the level passes below the minimum: its branch ends at its loss
                    add(li, e[m], node, [m])
            for g in sorted(groups.values(), key=lambda g: e[g].min()):
                child = add(li, E, node, g)
                if len(g) > 1:
                    still_open[child] = g
        open_nodes = still_open
    return _finish(rows)


def _finish(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["x"] = layout(df)
    return df[NODE_COLUMNS]


def prune(nodes: pd.DataFrame, minima: np.ndarray) -> pd.DataFrame:
    """The graph restricted to the leaves of ``minima``: nodes without such a leaf below them are
    dropped, and so is the trunk above the node where the kept leaves first meet (it becomes the
    root). ``n_minima``, ``lowest`` and ``x`` are recomputed; node ids are kept."""
    parent = dict(zip(nodes["node"], nodes["parent"]))
    count: dict[int, int] = {}
    lowest: dict[int, int] = {}
    leaves = nodes[nodes["minimum"].isin(minima)].sort_values("leaf_energy", ascending=False)
    for leaf, m in zip(leaves["node"], leaves["minimum"]):  # highest first: the lowest is set last
        k = int(leaf)
        while k >= 0:
            count[k], lowest[k] = count.get(k, 0) + 1, int(m)
            k = int(parent[k])
    out = nodes[nodes["node"].isin(count)].copy()
    out["n_minima"], out["lowest"] = out["node"].map(count), out["node"].map(lowest)
    total = max(count.values(), default=0)
    kids = out["parent"].value_counts()
    trunk = out[(out["n_minima"] == total) & (out["node"].map(kids).fillna(0) == 1)]
    out = out[~out["node"].isin(trunk["node"])]
    out.loc[~out["parent"].isin(out["node"]), "parent"] = -1
    out["x"] = layout(out)
    return out.reset_index(drop=True)


def layout(df: pd.DataFrame) -> np.ndarray:
    """Horizontal position of every node: leaves at 0, 1, 2, ... in drawing order, an inner node
    above the child that holds its lowest minimum."""
    lowest_energy = dict(zip(df["minimum"], df["leaf_energy"]))
    lowest = dict(zip(df["node"], df["lowest"]))
    children: dict[int, list[int]] = {}
    for node, parent in zip(df["node"], df["parent"]):
        children.setdefault(int(parent), []).append(int(node))
    x: dict[int, float] = {}
    leaves = [0]

    def order(kids, flip: bool):  # lowest child in the middle, the others alternating outwards,
        kids = sorted(kids, key=lambda k: lowest_energy[lowest[k]])  # starting on the side set by ``flip``
        out: list[int] = []
        for i, k in enumerate(kids):
            out = out + [k] if (i % 2 == 0) != flip else [k] + out
        return out

    def place(node: int, splits: int) -> None:  # splits: branchings above this node
        kids = children.get(node, [])
        if not kids:
            x[node] = float(leaves[0])
            leaves[0] += 1
            return
        for k in order(kids, splits % 2 == 1):  # side branches alternate sides split by split
            place(k, splits + (len(kids) > 1))
        x[node] = next(x[k] for k in kids if lowest[k] == lowest[node])

    for root in order(children.get(-1, []), False):
        place(root, 0)
    return np.array([x[int(k)] for k in df["node"]])
