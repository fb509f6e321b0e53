"""What decides MNIST's testing AUC at 40-75 % mislabelling? (issue 30, item 5)

For each error level and input scale (``raw`` 0-255, the default, and ``unit`` [0, 1]), the
default run's training data are rebuilt (same seed, so the same items and mislabelling), and a
basin-hopping sample of ``CHAINS`` x (``STEPS`` + 1) quenches is drawn on it with the default
settings. For every verified minimum: its loss and AUCs (training, mislabelled items, testing,
macro-averaged one-versus-rest as the default and digit 0 versus the rest). Summaries per
configuration: the mean and sd over all minima, over the ``LOWEST`` lowest (the paper's figures
are from low-lying minima), and the spread of the testing AUC that the test set's finite size
alone gives (bootstrap over test items, at the lowest minimum). Writes
``benchmarks/results/mnist_calibration.json``.

    python benchmarks/mnist_calibration.py [LEVELS (comma-separated, default 50,75)] [SCALES (default raw,unit)]
"""

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from common import write

import losslandscapes
from losslandscapes.landscape import basinhopping
from losslandscapes.stages import data as data_stages
from losslandscapes.landscape.system import System
from losslandscapes.storage.artefacts import read_parquet
from losslandscapes.config import load_yaml, resolve
from losslandscapes.analysis.metrics import auc_score, minimum_metrics

LEVELS = [int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "50,75").split(",")]
SCALES = (sys.argv[2] if len(sys.argv) > 2 else "raw,unit").split(",")
CHAINS, STEPS, LOWEST, BOOT = 4, 2, 4, 200
ROOT = Path(losslandscapes.__file__).parents[2]
torch.set_num_threads(1)
cfg = resolve(load_yaml(ROOT / "config.yaml"))
paper = {r["error"]: r for r in yaml.safe_load((ROOT / "src/losslandscapes/data/reference_values.yaml").read_text())["table3_MNIST"]}
COLS = ["train_auc", "incorrect_auc", "correct_auc", "test_auc"]


def stats(df: pd.DataFrame) -> dict:
    return {c: [float(df[c].mean()), float(df[c].std(ddof=1)) if len(df) > 1 else float("nan")] for c in [*COLS, "test_auc_digit0"]}


results = []
for level in LEVELS:
    for scale in SCALES:
        exp = cfg.experiment(f"MNIST-e{level}")
        exp = replace(exp, search=replace(exp.search, chains=CHAINS, steps=STEPS, coverage=None))
        dataset = {**cfg.datasets["MNIST"], "pixel_scale": scale}
        d = Path(tempfile.mkdtemp())
        data_stages.experiment(exp, dataset, None, str(d / "train.parquet"), str(d / "test.parquet"))
        system = System.from_training_set(exp, str(d / "train.parquet"), "cpu")
        pot, db = system.pot, system.database(d / "db.sqlite", {"calibration": scale})
        t0 = time.process_time()
        bh = basinhopping.run(pot, db, exp.search, exp.seed, torch.device("cpu"))
        cpu = time.process_time() - t0
        mins = db.minima_frame()
        params = np.stack(mins["params"].to_numpy())
        tr, _ = read_parquet(d / "train.parquet")
        te, _ = read_parquet(d / "test.parquet")
        m = minimum_metrics(pot, params, tr, te, "mnist", {"mnist_average": "macro"})
        m["test_auc_digit0"] = minimum_metrics(pot, params, tr, te, "mnist", {"mnist_average": "digit0"})["test_auc"]
        m["loss"] = mins["loss"].to_numpy()
        m = m.sort_values("loss").reset_index(drop=True)
        # the test set's own sampling spread, at the lowest minimum: AUC over bootstrap resamples of the test items
        with torch.no_grad():
            proba = pot.log_proba(torch.as_tensor(params[[int(np.argmin(mins["loss"]))]]),
                                  torch.as_tensor(np.stack(te["x"].to_numpy()))).exp()[0].numpy()
        rng = np.random.default_rng(0)
        y = te["label"].to_numpy()
        boot = [auc_score(y[i], proba[i], "mnist") for i in (rng.integers(0, len(y), len(y)) for _ in range(BOOT))]
        results.append({
            "error": level, "pixel_scale": scale, "minima": len(m), "quenches": CHAINS * (STEPS + 1),
            "cpu_seconds": cpu, "acceptance": bh.get("accepted", 0) / max(bh.get("proposed", 1), 1),
            "all": stats(m), f"lowest_{LOWEST}": stats(m.head(LOWEST)),
            "test_auc_bootstrap_sd": float(np.std(boot, ddof=1)), "n_test": len(y),
            "paper": {c: [paper[level].get(f"{c}_mean"), paper[level].get(f"{c}_sd")] for c in COLS},
            "per_minimum": m.round(6).to_dict("records"),
        })
        db.close()
        write("mnist_calibration", {"command": "python benchmarks/mnist_calibration.py " + " ".join(sys.argv[1:]),
                                    "chains": CHAINS, "steps": STEPS, "results": results})
