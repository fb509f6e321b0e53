"""The files of a finished landscape under a results directory: the one owner of these names for
the rules that need them and for the steps that read many landscapes (tables, claims, figures).
The rules name the other files (data, training sets, databases, logs) themselves."""

from __future__ import annotations

from pathlib import Path


def landscape_files(results: str | Path, exp) -> dict[str, str]:
    """{role: path} of the finished landscape of ``exp`` (``config.Experiment``): its minima,
    transition states, metrics and quenches; its disconnectivity tree where it has transition
    states, and its independent draws where it has more than one."""
    d = f"{results}/landscapes/{exp.id}"
    files = {"minima": f"{d}/minima.parquet", "ts": f"{d}/ts.parquet", "metrics": f"{d}/metrics.parquet",
             "quenches": f"{d}/quenches.parquet"}
    if exp.transition_states:
        files["tree"] = f"{d}/disconnectivity.parquet"
    if exp.draws > 1:
        files["draws"] = f"{d}/draws.parquet"
    return files


def spec_inputs(results: str | Path, cfg, specs: dict, name: str) -> dict[str, dict[str, str]]:
    """{experiment id: ``landscape_files``} of the table or figure ``name`` of ``specs``
    (``Config.tables`` or ``Config.figures``), cut to the configured experiments."""
    return {e: landscape_files(results, cfg.experiment(e)) for e in cfg.present(specs)[name]["experiments"]}
