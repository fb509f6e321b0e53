"""Command line: ``python -m losslandscapes STEP [options]``, one workflow step per command.

Every option is named and typed (``python -m losslandscapes STEP --help`` lists them). A step
that needs settings reads them from ``--config`` (the repository's config.yaml, with files of
your own merged over it by further ``--config``, and ``--set KEY=VALUE`` as ``snakemake
--config`` would set it); the workflow's rules pass the configuration that Snakemake resolved.
Logs go to standard error with timestamps.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import yaml

TORCH_STEPS = {"ljat3", "basinhopping", "connect", "draws", "metrics"}  # the others never import torch (faster start)
OPTIONS = {  # option -> (help, required); each step lists the ones it takes
    "--dataset": ("name of an LJAT3 data set of the configuration", True),
    "--experiment": ("id of an experiment of the configuration", True),
    "--figure": ("name of a figure of the configuration", True),
    "--source": ("the experiment's LJAT3 data set (Parquet; LJAT3 experiments only)", False),
    "--train": ("training set (Parquet)", True),
    "--test": ("testing set (Parquet)", True),
    "--start-minima": ("basin-hopping's minima (Parquet), where connect starts", True),
    "--minima": ("minima (Parquet)", True),
    "--ts": ("transition states (Parquet)", True),
    "--quenches": ("every quench of basin-hopping (Parquet)", True),
    "--db": ("the step's resumable database (SQLite)", True),
    "--db-dir": ("folder of the draws' resumable databases", True),
    "--results": ("results folder of a run, whose landscapes are read", True),
    "--out": ("output file", True),
    "--out-dir": ("output folder", True),
}
STEPS = {  # step -> (what it does, its options besides --config/--set/--threads)
    "ljat3": ("generate and label one LJAT3 data set", ["--dataset", "--out"]),
    "experiment": ("an experiment's training and testing sets", ["--experiment", "--source", "--train", "--test"]),
    "basinhopping": ("sample an experiment's minima", ["--experiment", "--train", "--db", "--minima", "--quenches"]),
    "connect": ("transition states between the minima", ["--experiment", "--train", "--start-minima", "--db",
                                                         "--minima", "--ts"]),
    "draws": ("independent draws of the training set: their global minima", ["--experiment", "--source", "--db-dir",
                                                                               "--out"]),
    "pathsample": ("PATHSAMPLE's min.data, ts.data, points.min and points.ts", ["--minima", "--ts", "--out-dir"]),
    "metrics": ("losses and AUCs of every minimum", ["--experiment", "--train", "--test", "--minima", "--out"]),
    "disconnectivity": ("a landscape's disconnectivity graph", ["--minima", "--ts", "--out"]),
    "tables": ("every table and the comparison with the paper", ["--results", "--out-dir"]),
    "claims": ("the paper's claims, checked", ["--results", "--out-dir"]),
    "figure": ("one figure", ["--figure", "--results", "--out"]),
}
NO_CONFIG = {"pathsample"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="losslandscapes", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True, metavar="STEP")
    for step, (what, options) in STEPS.items():
        s = sub.add_parser(step, help=what, description=what)
        if step not in NO_CONFIG:
            s.add_argument("--config", action="append", required=True, metavar="FILE",
                           help="configuration file; a second and further ones are merged over the first")
            s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override a top-level key (VALUE is YAML), as snakemake --config does")
        for opt in options:
            help_, required = OPTIONS[opt]
            s.add_argument(opt, required=required, help=help_, metavar="PATH" if opt not in (
                "--dataset", "--experiment", "--figure") else "NAME")
        s.add_argument("--threads", type=int, default=1, help="threads of this job (default 1)")
    return p


def load_config(files: list[str], sets: list[str]):
    """The resolved ``config.Config`` of ``files`` (merged as user files over the first) and
    ``KEY=VALUE`` overrides."""
    from losslandscapes.config import ConfigError, resolve, with_user_files

    overrides = {}
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    return resolve(with_user_files(files[0], files[1:], overrides))


def run(a: argparse.Namespace) -> None:
    """Call the step's function of ``stages`` with what the options name."""
    from losslandscapes.config import derive_seed
    from losslandscapes.paths import landscape_files, spec_inputs
    from losslandscapes.stages import analysis, data, landscape

    if a.step == "pathsample":
        return landscape.pathsample(a.minima, a.ts, a.out_dir)
    cfg = load_config(a.config, a.set)
    exp = cfg.experiment(a.experiment).for_step(a.step) if getattr(a, "experiment", None) else None
    if a.step == "ljat3":
        if a.dataset not in cfg.ljat3_datasets():
            raise SystemExit(f"--dataset {a.dataset!r}: not an LJAT3 data set of this configuration "
                             f"({', '.join(cfg.ljat3_datasets()) or 'none'})")
        return data.ljat3(a.dataset, cfg.datasets[a.dataset]["L"], cfg.ljat3, derive_seed(cfg.seed, a.dataset),
                          cfg.device, a.out)
    if a.step == "experiment":
        return data.experiment(exp, cfg.datasets[exp.data], a.source, a.train, a.test)
    if a.step == "basinhopping":
        return landscape.basinhopping(exp, a.train, a.db, a.minima, a.quenches, cfg.device)
    if a.step == "connect":
        return landscape.connect(exp, a.train, a.start_minima, a.db, a.minima, a.ts, cfg.device)
    if a.step == "draws":
        return landscape.draws(exp, cfg.datasets[exp.data], a.source, a.db_dir, a.out, cfg.auc, cfg.device)
    if a.step == "metrics":
        return analysis.metrics(exp, a.train, a.test, a.minima, a.out, cfg.auc)
    if a.step == "disconnectivity":
        return analysis.disconnectivity(a.minima, a.ts, a.out, cfg.levels)
    if a.step == "tables":
        tables = cfg.present(cfg.tables)
        inputs = {e: f for name in tables for e, f in spec_inputs(a.results, cfg, cfg.tables, name).items()}
        return analysis.tables(tables, inputs, a.out_dir)
    if a.step == "claims":
        return analysis.claims({e: landscape_files(a.results, cfg.experiment(e)) for e in cfg.ids()}, a.out_dir)
    if a.step == "figure":
        figures = cfg.present(cfg.figures)
        if a.figure not in figures:
            raise SystemExit(f"--figure {a.figure!r}: not a figure of this configuration ({', '.join(figures)})")
        return analysis.figure(figures[a.figure], spec_inputs(a.results, cfg, cfg.figures, a.figure), a.out)
    raise AssertionError(a.step)


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.step in TORCH_STEPS:
        import torch

        torch.set_num_threads(max(1, a.threads))
    from losslandscapes.workers import serial_blas, set_threads

    serial_blas()  # before any step: BLAS results must not depend on the machine's cores
    set_threads(a.threads)
    log = logging.getLogger("losslandscapes")
    t0 = time.monotonic()
    log.info("step %s started", a.step)
    run(a)
    log.info("step %s finished in %.1f s", a.step, time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
