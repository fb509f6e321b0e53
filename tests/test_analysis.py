import numpy as np
import pandas as pd
import pytest

from losslandscapes.disconnectivity import tree
from losslandscapes.metrics import auc_binary, auc_score
from losslandscapes.tables import comparison, landscape_row


def test_auc_known_answers():
    pos = np.array([1, 1, 0, 0], bool)
    assert auc_binary(pos, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert auc_binary(pos, np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert auc_binary(pos, np.array([0.9, 0.2, 0.8, 0.1])) == 0.75  # 3 of 4 pairs ordered
    assert np.isnan(auc_binary(np.ones(3, bool), np.zeros(3)))
    assert auc_binary(pos, np.array([0.9, 0.8, 0.2, 0.1]), "threshold101") == pytest.approx(1.0)


def test_exact_auc_equals_scikit_learn_with_ties(rng):
    from sklearn.metrics import roc_auc_score

    for n in (5, 200, 5000):
        pos = rng.uniform(size=n) < 0.3
        pos[:2] = [True, False]
        score = np.round(rng.uniform(size=n), 2)  # many ties
        assert auc_binary(pos, score) == pytest.approx(roc_auc_score(pos, score), rel=0, abs=1e-14)


def test_macro_auc_averages_one_vs_rest():
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[y] * 0.8 + 0.1
    assert auc_score(y, perfect, "mnist") == 1.0
    assert auc_score(y, perfect, "ljat3") == 1.0  # class 0 versus rest


def test_disconnectivity_tree_basins():
    # minima A=0.0, B=1.0, C=0.5, D=2.0, E=0.2; TS A-B 3.0, B-C 4.0, C-D 2.5; E has no TS
    E = np.array([0.0, 1.0, 0.5, 2.0, 0.2])
    ts_E = np.array([3.0, 4.0, 2.5])
    pairs = np.array([[0, 1], [1, 2], [2, 3]])
    nodes = tree(E, ts_E, pairs, n_levels=8)
    assert set(nodes.loc[nodes["minimum"] >= 0, "minimum"]) == {0, 1, 2, 3}  # isolated E left out
    delta = (4.0 - 0.0) / 8
    levels = 4.0 + 0.5 * delta - delta * np.arange(9)

    def basins(level):
        rows = nodes[nodes["level"] == level]
        return sorted(int(n) for n in rows["n_minima"])

    # between TS 4.0 and 3.0 ({A,B} and {C,D}); between 3.0 and 2.5 ({A},{B},{C,D})
    li = int(np.flatnonzero((levels < 4.0) & (levels > 3.0))[0])
    assert basins(li) == [2, 2]
    li = int(np.flatnonzero((levels < 3.0) & (levels > 2.5))[0])
    assert sorted(nodes[(nodes["level"] <= li)]["minimum"].tolist()).count(-1) >= 1
    top = nodes[nodes["level"] == 0]
    assert len(top) == 1 and int(top["n_minima"].iloc[0]) == 4
    gmin_leaf = nodes[nodes["minimum"] == 0]
    assert float(gmin_leaf["x"].iloc[0]) == float(top["x"].iloc[0])  # global minimum centred under the root


def test_table_row_and_comparison():
    exp = {"id": "D1-e0", "error": 0.0, "hidden": [10], "n_train": 1000}
    minima = pd.DataFrame({"sym_class": [1, 2, 2], "loss": [0.9, 0.8, 0.8]})
    ts = pd.DataFrame({"degenerate": [False, True], "sym_class": [1, 2], "loss": [1.0, 0.85], "min1": [1, 2],
                       "min2": [2, 3]})
    metrics = pd.DataFrame({"train_loss": [0.9, 0.8, 0.85], "train_auc": [0.7, 0.75, 0.72],
                            "incorrect_auc": [np.nan] * 3, "correct_auc": [0.7, 0.75, 0.72],
                            "test_ce": [1.0, 0.9, 0.95], "test_loss": [1.1, 1.0, 1.05], "test_auc": [0.6, 0.65, 0.62]})
    quenches = pd.DataFrame({"minimum": [1, 2, 3, 3, -1]})  # classes 1, 2, 2, 2 and a failure
    row = landscape_row(exp, minima, ts, metrics, quenches)
    assert (row["min"], row["min_sym"], row["ts"], row["ts_degenerate"]) == (3, 2, 1, 1)
    assert (row["quenches"], row["coverage"], row["chao1"]) == (4, 0.75, 2.0)  # f1 = 1, f2 = 0: 2 + 0
    assert (row["connected"], row["gmin_basin"]) == (2, 1.0)
    assert row["train_gmin_loss"] == 0.8 and row["test_gmin_auc"] == 0.65
    assert row["train_auc_mean"] == pytest.approx(0.72333333) and np.isnan(row["incorrect_auc_mean"])
    comp = comparison([row], [{"error": 0, "min": 122, "incorrect_auc_mean": None, "test_gmin_auc": 0.732}], "landscape")
    assert comp["column"].tolist() == ["min", "test_gmin_auc"]
    assert comp["difference"].iloc[0] == 3 - 122


def test_disconnectivity_leaves_are_symmetry_classes(tmp_path):
    from losslandscapes.artefacts import read_parquet, write_parquet
    from losslandscapes.stages import disconnectivity_tree

    # minima 1 and 2 are images of one minimum (class 1), 3 is class 3; the only TS joins 2 and 3,
    # another joins the two images (same class: no edge)
    mins = pd.DataFrame({"id": [1, 2, 3], "loss": [0.0, 0.0, 0.5], "sym_class": [1, 1, 3]})
    ts = pd.DataFrame({"id": [1, 2], "loss": [1.0, 0.7], "min1": [2, 1], "min2": [3, 2],
                       "degenerate": [False, False]})
    write_parquet(tmp_path / "m.parquet", mins, {"experiment": {"id": "x"}})
    write_parquet(tmp_path / "t.parquet", ts, {})
    disconnectivity_tree(str(tmp_path / "m.parquet"), str(tmp_path / "t.parquet"), str(tmp_path / "n.parquet"), 4)
    nodes, _ = read_parquet(tmp_path / "n.parquet")
    assert nodes["n_minima"].max() == 2  # two classes joined, not three minima
    assert set(nodes.loc[nodes["minimum"] >= 0, "minimum"]) == {0, 2}  # rows of the representatives
