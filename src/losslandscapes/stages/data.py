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
from losslandscapes.config import Connect, Experiment, Minimiser, Search

log = logging.getLogger(__name__)


def experiment_from_dict(d: dict) -> Experiment:
    d = dict(d)
    d["hidden"] = tuple(d["hidden"])
    d["features"] = tuple(d["features"])
    # a stage that does not use a section is not given it (it stays None)
    d["search"] = Search(**d["search"]) if d.get("search") else None
    d["connect"] = Connect(**d["connect"]) if d.get("connect") else None
    if d.get("draw_search"):
        d["draw_search"] = Search(**d["draw_search"])
    return Experiment(**d)

def ljat3_dataset(name: str, L: float, ljat3_cfg: dict, seed: int, device: str, output: str) -> dict:
    """Generate, label and write one LJAT3 data set (docs/methods.md §2)."""
    from losslandscapes.data import ljat3
    from losslandscapes.optimize.lbfgs import LBFGSSettings
    from losslandscapes.potentials.mlp import resolve_device

    s = ljat3.GeneratorSettings(
        L=float(L), n_starts=int(ljat3_cfg.get("n_starts", 200_000)), seed=int(seed),
        Z=float(ljat3_cfg.get("Z", ljat3.Z_DEFAULT)), labelling=ljat3_cfg.get("labelling", "lbfgs"),
        minimiser=LBFGSSettings(**asdict(Minimiser(**(ljat3_cfg.get("minimiser") or {})))),
    )
    columns, summary = ljat3.generate(s, device=str(resolve_device(device)))
    log.info("%s: %s", name, summary)
    write_parquet(output, pd.DataFrame(columns), {"dataset": name, "generator": s.metadata(), "summary": summary})
    return summary


def _source(exp: Experiment, dataset: dict, source: str | None) -> tuple[tuple, dict, tuple]:
    """(source arrays for ``experiments.build``, their metadata, feature names) of ``exp``."""
    if exp.kind == "ljat3":
        src, meta = sets.ljat3_source(source, exp.features)
        return src, meta, exp.features
    if exp.kind == "mnist":
        src, meta = sets.mnist_source(dataset)
        return src, meta, ()
    src, meta = sets.load_table(dataset)
    return src, meta, tuple(dataset["features"])


def experiment_data(exp: Experiment, dataset: dict, source: str | None, out_train: str, out_test: str) -> dict:
    """Training and testing Parquet of one experiment (docs/methods.md §3-§5)."""
    src, src_meta, names = _source(exp, dataset, source)
    train, test, summary = sets.build(exp, src, names)
    meta = {"experiment": exp.as_dict(), "source": src_meta, "summary": summary}
    write_parquet(out_train, train, meta)
    write_parquet(out_test, test, meta)
    log.info("%s: %s", exp.id, {k: v for k, v in summary.items() if k != "masks"})
    return summary
