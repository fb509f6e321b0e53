import numpy as np
import pandas as pd
import pytest

from losslandscapes.analysis.metrics import auc_binary, auc_score
from losslandscapes.analysis.tables import comparison, landscape_row


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


def test_table_row_and_comparison():
    exp = {"id": "D1-e0", "error": 0.0, "hidden": [10], "n_train": 1000}
    minima = pd.DataFrame({"id": [1, 2, 3], "sym_class": [1, 2, 2], "loss": [0.9, 0.8, 0.8]})
    ts = pd.DataFrame({"degenerate": [False, True], "sym_class": [1, 2], "loss": [1.0, 0.85], "min1": [1, 2],
                       "min2": [2, 3]})
    metrics = pd.DataFrame({"train_loss": [0.9, 0.8, 0.85], "train_auc": [0.7, 0.75, 0.72],
                            "incorrect_auc": [np.nan] * 3, "correct_auc": [0.7, 0.75, 0.72],
                            "test_ce": [1.0, 0.9, 0.95], "test_loss": [1.1, 1.0, 1.05], "test_auc": [0.6, 0.65, 0.62]})
    # chain 0: start in class 1, a move to class 2, two returns to class 2, a failed quench;
    # chain 1: its start, in class 2
    quenches = pd.DataFrame({"chain": [0] * 5 + [1], "step": [0, 1, 2, 3, 4, 0], "minimum": [1, 2, 3, 3, -1, 2],
                             "accepted": [True, True, True, True, False, True]})
    row = landscape_row(exp, minima, ts, metrics, quenches)
    assert (row["min"], row["min_sym"], row["ts"], row["ts_degenerate"]) == (3, 2, 1, 1)
    # class 1 found by one chain, class 2 by both: U = 3, Q1 = Q2 = 1, T = 2
    assert (row["quenches"], row["chao"]) == (5, 2.0) and row["coverage"] == pytest.approx(1 - 1 / 3 * 1 / 3)
    assert (row["acceptance"], row["returns"]) == (0.75, 0.5)
    # class 1 (0.9) joins the global minimum (0.8) at 1.0: 0.1 above it, not below its height 0.1
    assert (row["connected"], row["funnel"]) == (2, 0.0)
    assert row["train_gmin_loss"] == 0.8 and row["test_gmin_auc"] == 0.65
    # over classes: rows 0 and 1 (row 2 is an image of row 1), not over the three stored minima
    assert row["train_auc_mean"] == pytest.approx(0.725) and np.isnan(row["incorrect_auc_mean"])
    assert row["train_auc_sd"] == pytest.approx(0.025)
    comp = comparison([row], [{"error": 0, "min": 122, "incorrect_auc_mean": None, "test_gmin_auc": 0.732}], "landscape")
    assert comp["column"].tolist() == ["min_sym", "test_gmin_auc"]  # the paper counted classes
    assert comp["difference"].iloc[0] == 2 - 122


def test_disconnectivity_leaves_are_symmetry_classes(tmp_path):
    from losslandscapes.storage.artefacts import read_parquet, write_parquet
    from losslandscapes.stages.analysis import disconnectivity

    # minima 1 and 2 are images of one minimum (class 1), 3 is class 3; the only TS joins 2 and 3,
    # another joins the two images (same class: no edge)
    mins = pd.DataFrame({"id": [1, 2, 3], "loss": [0.0, 0.0, 0.5], "sym_class": [1, 1, 3]})
    ts = pd.DataFrame({"id": [1, 2], "loss": [1.0, 0.7], "min1": [2, 1], "min2": [3, 2],
                       "degenerate": [False, False]})
    write_parquet(tmp_path / "m.parquet", mins, {"experiment": {"id": "x"}})
    write_parquet(tmp_path / "t.parquet", ts, {})
    disconnectivity(str(tmp_path / "m.parquet"), str(tmp_path / "t.parquet"), str(tmp_path / "n.parquet"), 4)
    nodes, _ = read_parquet(tmp_path / "n.parquet")
    assert nodes["n_minima"].max() == 2  # two classes joined, not three minima
    assert set(nodes.loc[nodes["minimum"] >= 0, "minimum"]) == {0, 2}  # rows of the representatives
