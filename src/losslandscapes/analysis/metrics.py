"""Per-minimum evaluation: losses and ROC AUC on training, mislabelled, correct and test items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from losslandscapes.data.kinds import KINDS


def auc_binary(positive: np.ndarray, score: np.ndarray, method: str = "exact") -> float:
    """Area under the ROC curve of ``score`` for boolean labels; NaN if only one class present.

    ``exact``: the exact area, the Mann-Whitney statistic (tied scores count one half; equal to
    scikit-learn's ``roc_auc_score``, tested) from one sort; ``threshold101``: OPTIM's trapezoid
    over the thresholds 0, 0.01, ..., 1 (scores are probabilities).
    """
    positive = np.asarray(positive, bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    if method == "exact":
        ranks = rankdata(score)  # 1-based, ties averaged
        return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    if method != "threshold101":
        raise ValueError(f"auc.method: expected exact or threshold101, got {method!r}")
    t = np.linspace(0.0, 1.0, 101)[:, None]
    tpr = (score[None, :] >= t)[:, positive].mean(1)
    fpr = (score[None, :] >= t)[:, ~positive].mean(1)
    return float(np.trapezoid(tpr[::-1], fpr[::-1]))


def auc_score(y: np.ndarray, proba: np.ndarray, kind: str, mnist_average: str = "macro", method: str = "exact") -> float:
    """AUC for labels ``y[N]`` and probabilities ``proba[N, C]``.

    ``kind`` names the data set's kind (``data.kinds``). LJAT3 (and tables): class 0 versus the
    rest, score p_0. MNIST (``DataKind.macro_auc``): the macro average of the one-versus-rest AUCs
    of the classes present in both roles, or digit 0 versus the rest.
    """
    if not KINDS[kind].macro_auc or mnist_average == "digit0":
        return auc_binary(y == 0, proba[:, 0], method)
    if mnist_average != "macro":
        raise ValueError(f"auc.mnist_average: expected macro or digit0, got {mnist_average!r}")
    aucs = [auc_binary(y == c, proba[:, c], method) for c in range(proba.shape[1])]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def minimum_metrics(pot, params: np.ndarray, train: pd.DataFrame, test: pd.DataFrame, kind: str,
                    auc: dict) -> pd.DataFrame:
    """One row per parameter vector ``params[M, P]`` (free layout) with losses and AUCs. The vectors
    are evaluated one at a time: on the 100,000 LJAT3 test items a batch of 32 took 1.8 times as
    long per vector (its [32, N, hidden] intermediates do not stay in cache; measured)."""
    Xtr = torch.as_tensor(np.stack(train["x"].to_numpy()), dtype=torch.float64, device=pot.device)
    Xte = torch.as_tensor(np.stack(test["x"].to_numpy()), dtype=torch.float64, device=pot.device)
    yte_t = torch.as_tensor(test["label"].to_numpy().copy(), device=pot.device)
    y = train["label"].to_numpy()
    flags = train["mislabelled"].to_numpy(bool)
    yte = test["label"].to_numpy()
    opts = {"mnist_average": auc.get("mnist_average", "macro"), "method": auc.get("method", "exact")}
    ytr_t = torch.as_tensor(y.copy(), device=pot.device)

    def evaluate(x, X, labels):  # mean cross-entropy and probabilities [N, C] of x[1, P], one forward pass
        logp = pot.log_proba(x, X)[0]
        ce = -logp.gather(1, labels[:, None])[:, 0].mean()
        return float(ce), logp.exp().cpu().numpy()

    rows = []
    for p in params:
        x = torch.as_tensor(p[None], dtype=torch.float64, device=pot.device)
        with torch.no_grad():
            reg = float(pot.regulariser(x)[0])
            ce_tr, p_tr = evaluate(x, Xtr, ytr_t)
            ce_te, p_te = evaluate(x, Xte, yte_t)
        rows.append({
            "train_loss": ce_tr + reg, "train_ce": ce_tr,
            "train_auc": auc_score(y, p_tr, kind, **opts),
            "incorrect_auc": auc_score(y[flags], p_tr[flags], kind, **opts) if flags.any() else np.nan,
            "correct_auc": auc_score(y[~flags], p_tr[~flags], kind, **opts) if (~flags).any() else np.nan,
            "test_ce": ce_te, "test_loss": ce_te + reg,
            "test_auc": auc_score(yte, p_te, kind, **opts),
        })
    return pd.DataFrame(rows)
