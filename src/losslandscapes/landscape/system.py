"""``System``: one experiment's landscape, built once between the configuration and the science.

It owns the parameter layout (free and frozen weights), the loss potential on the training set
(compiled kernels on the CPU, torch on CUDA: ``potentials.mlp.Potential``), the network's
symmetry, the step's settings (``exp.search``, ``exp.connect``) and the databases opened with
them, and turns a database into the minima and transition-state tables the workflow writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from losslandscapes.config import Experiment
from losslandscapes.data.sets import locality_masks
from losslandscapes.landscape.symmetry import NetworkSymmetry
from losslandscapes.potentials.layout import Layout, free_mask
from losslandscapes.potentials.mlp import MLPLoss, resolve_device
from losslandscapes.storage.artefacts import read_parquet, require_columns
from losslandscapes.storage.database import Database

MINIMA_COLUMNS = ["id", "loss", "params", "rms_grad", "min_eig", "n_neg_eig", "sym_class", "found_at_step"]
TS_COLUMNS = ["id", "loss", "params", "min1", "min2", "neg_eig", "n_neg_eig", "rms_grad", "degenerate", "sym_class"]
TS_DTYPES = ["int64", "float64", "object", "int64", "int64", "float64", "int64", "float64", "bool", "int64"]


def training_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X[N, I]`` and labels ``y[N]`` of a training (or testing) set Parquet."""
    df, _ = read_parquet(path)
    require_columns(df, ["x", "label"], path)
    return np.stack(df["x"].to_numpy()), df["label"].to_numpy(np.int64)


@dataclass
class System:
    exp: Experiment
    layout: Layout
    pot: MLPLoss
    symmetry: NetworkSymmetry
    device: torch.device

    @classmethod
    def build(cls, exp: Experiment, X: np.ndarray, y: np.ndarray, device: str | torch.device = "cpu") -> System:
        """The system of ``exp`` on training inputs ``X[N, I]`` and labels ``y[N]``; ``device``:
        auto, cpu, cuda or a torch device."""
        device = resolve_device(device) if isinstance(device, str) else device
        layout = Layout(exp.sizes, free_mask(exp.sizes, locality_masks(exp.sizes, exp.locality, exp.tie_break)))
        pot = MLPLoss(layout, X, y, exp.lam, regularise_biases=exp.regularise_biases, device=device)
        return cls(exp, layout, pot, NetworkSymmetry(layout), device)

    @classmethod
    def from_training_set(cls, exp: Experiment, train: str, device: str | torch.device = "cpu") -> System:
        """``build`` on the training set Parquet at ``train``."""
        return cls.build(exp, *training_arrays(train), device)

    def on_cpu(self) -> System:
        """This system with its potential on the CPU (itself if it is there already)."""
        if self.device.type == "cpu":
            return self
        return System.build(self.exp, self.pot.X.cpu().numpy(), self.pot.y.cpu().numpy(), "cpu")

    def database(self, path, settings: dict) -> Database:
        """The resumable database at ``path`` for a step with ``settings`` (a mismatch with what
        the file was made with is an error), identifying minima by ``exp.search``'s tolerances."""
        s = self.exp.search
        return Database(path, settings, self.symmetry, s.energy_tol, s.distance_tol)

    def minima_table(self, db: Database) -> pd.DataFrame:
        """The minima of ``db`` (``MINIMA_COLUMNS``), parameters in the full layout."""
        df = db.minima_frame()
        df["params"] = [self.layout.to_full(p) for p in df["params"]]
        return df[MINIMA_COLUMNS]

    def ts_table(self, db: Database) -> pd.DataFrame:
        """The transition states of ``db`` (``TS_COLUMNS``), parameters in the full layout."""
        df = db.ts_frame()
        if df.empty:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(TS_COLUMNS, TS_DTYPES)})
        df["params"] = [self.layout.to_full(p) for p in df["params"]]
        return df[TS_COLUMNS]

    def metadata(self, stats: dict) -> dict:
        """What a landscape's Parquet records: the experiment, the free mask and a step's statistics."""
        return {"experiment": self.exp.as_dict(), "free_mask": self.layout.free.astype(int).tolist(),
                "n_free": self.layout.P, "stats": {k: v for k, v in stats.items() if k != "seconds"}}
