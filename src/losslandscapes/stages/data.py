"""Workflow steps that make data: LJAT3 data sets and each experiment's training and testing sets.

Like every module of ``stages``: read artefacts, call the science, write artefacts; the rules
call these functions through ``cli``. Torch-based modules are imported inside the steps that
need them: the light steps start in about a second instead of four.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import pandas as pd

from losslandscapes.data import sets
from losslandscapes.storage.artefacts import write_parquet
from losslandscapes.config import Experiment, Minimiser

log = logging.getLogger(__name__)


def ljat3(name: str, L: float, ljat3_cfg: dict, seed: int, device: str, output: str) -> dict:
    """Generate, label and write one LJAT3 data set (docs/methods.md §2); ``ljat3_cfg`` is the
    configuration's ``ljat3`` section (validated by ``config.resolve``)."""
    from losslandscapes.data.ljat3 import GeneratorSettings, generate
    from losslandscapes.optimize.lbfgs import LBFGSSettings
    from losslandscapes.potentials.mlp import resolve_device

    s = GeneratorSettings(
        L=float(L), n_starts=int(ljat3_cfg["n_starts"]), seed=int(seed), Z=float(ljat3_cfg["Z"]),
        labelling=ljat3_cfg["labelling"], minimiser=LBFGSSettings(**asdict(Minimiser(**ljat3_cfg["minimiser"]))),
    )
    columns, summary = generate(s, device=str(resolve_device(device)))
    log.info("%s: %s", name, summary)
    write_parquet(output, pd.DataFrame(columns), {"dataset": name, "generator": s.metadata(), "summary": summary})
    return summary


def experiment(exp: Experiment, dataset: dict, source: str | None, out_train: str, out_test: str) -> dict:
    """Training and testing Parquet of one experiment (docs/methods.md §3-§5)."""
    src, src_meta, names = exp.data_kind.source(exp, dataset, source)
    train, test, summary = sets.build(exp, src, names)
    meta = {"experiment": exp.as_dict(), "source": src_meta, "summary": summary}
    write_parquet(out_train, train, meta)
    write_parquet(out_test, test, meta)
    log.info("%s: %s", exp.id, {k: v for k, v in summary.items() if k != "masks"})
    return summary
