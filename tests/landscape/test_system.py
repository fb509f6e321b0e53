"""The system object: one layout shared by the potential and the symmetry; data-set kinds registered."""

from pathlib import Path

import numpy as np
import pytest
import torch

from losslandscapes.config import ConfigError, load_yaml, resolve
from losslandscapes.data.kinds import KINDS, DataKind, kind
from losslandscapes.data.sets import n_frozen
from losslandscapes.landscape.system import MINIMA_COLUMNS, TS_COLUMNS, System

ROOT = Path(__file__).resolve().parents[2]
CFG = resolve(load_yaml(ROOT / "config.yaml"))


def test_a_system_builds_one_layout_for_the_potential_and_the_symmetry(tmp_path):
    exp = CFG.experiment("D1-h10-k1")  # locality k = 1: frozen weights
    rng = np.random.default_rng(0)
    system = System.build(exp, rng.normal(size=(40, exp.inputs)), rng.integers(0, exp.outputs, 40))
    assert system.pot.layout is system.layout is system.symmetry.layout
    assert system.layout.P_full - system.layout.P == n_frozen(exp.sizes, exp.locality, exp.tie_break) > 0
    assert system.device == torch.device("cpu") and system.on_cpu() is system and system.pot.kernel is not None
    db = system.database(tmp_path / "db.sqlite", {"test": 1})
    assert list(system.minima_table(db).columns) == MINIMA_COLUMNS and system.ts_table(db).empty
    assert list(system.ts_table(db).columns) == TS_COLUMNS
    meta = system.metadata({"seconds": 1.0, "quenches": 3})
    assert meta["n_free"] == system.layout.P and meta["stats"] == {"quenches": 3}
    db.close()


def test_every_data_set_kind_of_the_config_is_a_registered_class():
    assert {ds["kind"] for ds in CFG.datasets.values()} <= set(KINDS)
    assert all(isinstance(k, DataKind) and k.name == name for name, k in KINDS.items())
    assert [e.id for e in CFG.experiments if not e.transition_states] == [
        e.id for e in CFG.experiments if not e.data_kind.transition_states]
    with pytest.raises(ConfigError, match=r"datasets.X.kind: unknown kind 'images'; expected one of ljat3, mnist"):
        kind("images", "datasets.X.kind")
