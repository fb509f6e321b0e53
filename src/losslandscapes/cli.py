"""Command line: ``python -m losslandscapes STEP [options]``, one workflow step per command.

Every option is named and typed (``python -m losslandscapes STEP --help`` lists them). A step
that needs settings reads them as Snakemake does: ``--configfile`` (the repository's config.yaml
by default; further files of your own are merged over it) and ``--config KEY=VALUE`` overrides.
The workflow's rules pass the run's configuration (``results/config.yaml``) and ``--expect``, the
digest of the settings the step was planned with. Logs go to standard error with timestamps.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import yaml

TORCH_STEPS = {"ljat3", "basinhopping", "connect", "draws", "metrics", "plan"}  # the others never import torch (faster start)
OPTIONS = {  # option -> what it names
    "--dataset": "name of an LJAT3 data set of the configuration",
    "--experiment": "id of an experiment of the configuration",
    "--figure": "name of a figure of the configuration",
    "--source": "the experiment's generated (LJAT3) data set, Parquet; only for LJAT3 experiments",
    "--train": "training set, Parquet",
    "--test": "testing set, Parquet",
    "--start-minima": "basin-hopping's minima, Parquet",
    "--minima": "minima, Parquet",
    "--ts": "transition states, Parquet",
    "--quenches": "every quench of basin-hopping, Parquet",
    "--db": "the step's database, SQLite",
    "--db-dir": "folder of the draws' databases",
    "--results": "results folder of a run, whose landscapes are read",
    "--out": "output file",
    "--out-dir": "output folder",
    "--json": "the plan, one record per job, as JSON",
    "--pilot-dir": "folder of the pilot's results and stored rates (reused by later plans)",
}
ROLES = {"in": " (read)", "out": " (written)", "db": " (created, or resumed where it exists)", None: ""}
EXP = ("--experiment", None)
STEPS = {  # step -> (what it does, [(option, role)])
    "ljat3": ("generate and label one LJAT3 data set", [("--dataset", None), ("--out", "out")]),
    "experiment": ("an experiment's training and testing sets",
                   [EXP, ("--source", "in"), ("--train", "out"), ("--test", "out")]),
    "basinhopping": ("sample an experiment's minima",
                     [EXP, ("--train", "in"), ("--db", "db"), ("--minima", "out"), ("--quenches", "out")]),
    "connect": ("transition states between the minima", [EXP, ("--train", "in"), ("--start-minima", "in"),
                                                          ("--db", "db"), ("--minima", "out"), ("--ts", "out")]),
    "draws": ("independent draws of the training set: their global minima",
              [EXP, ("--source", "in"), ("--db-dir", "db"), ("--out", "out")]),
    "pathsample": ("PATHSAMPLE's min.data, ts.data, points.min and points.ts",
                   [("--minima", "in"), ("--ts", "in"), ("--out-dir", "out")]),
    "metrics": ("losses and AUCs of every minimum",
                [EXP, ("--train", "in"), ("--test", "in"), ("--minima", "in"), ("--out", "out")]),
    "disconnectivity": ("a landscape's disconnectivity graph", [("--minima", "in"), ("--ts", "in"), ("--out", "out")]),
    "tables": ("every table and the comparison with the paper", [("--results", "in"), ("--out-dir", "out")]),
    "claims": ("the paper's claims, checked", [("--results", "in"), ("--out-dir", "out")]),
    "figure": ("one figure", [("--figure", None), ("--results", "in"), ("--out", "out")]),
    "plan": ("predicted CPU- and GPU-seconds of every job, and the wall time on given machines (each job with the "
             "configuration's threads), from a pilot on this machine",
             [("--pilot-dir", "db"), ("--json", "out")]),
}
NO_CONFIG = {"pathsample"}
NAMES = {"--dataset", "--experiment", "--figure"}
OPTIONAL = {"--source", "--json", "--pilot-dir"}


class UsageError(Exception):
    """Bad command-line input; the message names the option."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="losslandscapes", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True, metavar="STEP")
    for step, (what, options) in STEPS.items():
        s = sub.add_parser(step, help=what, description=what)
        if step not in NO_CONFIG:
            s.add_argument("--configfile", action="append", metavar="FILE",
                           help="configuration file (default: config.yaml); further ones are merged over the first")
            s.add_argument("--config", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                           help="set top-level keys (each VALUE is YAML), as snakemake --config does")
            s.add_argument("--expect", metavar="DIGEST",
                           help="stop unless the configuration gives this step the settings with this digest")
        for opt, role in options:
            s.add_argument(opt, required=opt not in OPTIONAL, help=OPTIONS[opt] + ROLES[role],
                           metavar="NAME" if opt in NAMES else "PATH")
        if step == "plan":
            s.add_argument("--nodes", type=int, default=1, help="machines (default 1)")
            s.add_argument("--cores-per-node", type=int, default=2, help="cores per machine (default 2)")
            s.add_argument("--gpus", type=int, default=0, help="GPUs per machine (default 0)")
            s.add_argument("--gpu-speedup", type=float,
                           help="how many times one GPU outruns one core of this machine on a search (needed with --gpus)")
            s.add_argument("--pilot-seconds", type=float, default=10.0,
                           help="seconds of each pilot basin-hopping and connect (default 10)")
        s.add_argument("--threads", type=int, default=1, help="threads of this job (default 1)")
    return p


def load_config(files: list[str] | None, sets: list[str]):
    """The resolved ``config.Config`` of ``files`` (merged as user files over the first;
    config.yaml by default) and ``KEY=VALUE`` overrides."""
    from pathlib import Path

    from losslandscapes.config import resolve, with_user_files

    files = files or ["config.yaml"]
    for f in files:
        if not Path(f).is_file():
            raise UsageError(f"--configfile {f}: no such file")
    overrides = {}
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"--config {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    try:
        raw = with_user_files(files[0], files[1:], overrides)
    except yaml.YAMLError as err:
        raise UsageError(f"--configfile {files[0]}: not valid YAML: {err}") from None
    return resolve(raw)


def _name(cfg, a: argparse.Namespace, step: str) -> str | None:
    """The experiment, data set or figure that the options name, checked against ``cfg``."""
    if getattr(a, "experiment", None) is not None:
        if a.experiment not in cfg.ids():
            raise UsageError(f"--experiment {a.experiment!r}: not an experiment of this configuration")
        kind = cfg.experiment(a.experiment).data_kind
        if step in ("experiment", "draws") and kind.generated != (a.source is not None):
            raise UsageError(f"--source: {'needed' if kind.generated else 'not used'} for experiment {a.experiment} "
                             f"(data set kind {kind.name})")
        return a.experiment
    if getattr(a, "dataset", None) is not None:
        if a.dataset not in cfg.ljat3_datasets():
            raise UsageError(f"--dataset {a.dataset!r}: not an LJAT3 data set used by this configuration "
                             f"({', '.join(cfg.ljat3_datasets()) or 'none'})")
        return a.dataset
    if getattr(a, "figure", None) is not None:
        if a.figure not in cfg.present(cfg.figures):
            raise UsageError(f"--figure {a.figure!r}: not a figure of this configuration "
                             f"({', '.join(cfg.present(cfg.figures))})")
        return a.figure
    return None


def run(a: argparse.Namespace) -> None:
    """Call the step's function of ``stages`` with what the options name."""
    from losslandscapes.config import derive_seed, digest
    from losslandscapes.paths import landscape_files, spec_inputs
    from losslandscapes.stages import analysis, data, landscape

    if a.step == "pathsample":
        return landscape.pathsample(a.minima, a.ts, a.out_dir)
    cfg = load_config(a.configfile, a.config)
    name = _name(cfg, a, a.step)
    if a.expect is not None and (found := digest(cfg.step_settings(a.step, name))) != a.expect:
        raise UsageError(f"--expect {a.expect}: the configuration gives this step other settings (digest {found}); "
                         "was the run's configuration rewritten by another snakemake command? Run snakemake again")
    exp = cfg.experiment(name).for_step(a.step) if getattr(a, "experiment", None) else None
    if a.step == "ljat3":
        return data.ljat3(name, cfg.datasets[name]["L"], cfg.ljat3, derive_seed(cfg.seed, name), cfg.device, a.out)
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
        inputs = {e: f for t in tables for e, f in spec_inputs(a.results, cfg, cfg.tables, t).items()}
        return analysis.tables(tables, inputs, a.out_dir)
    if a.step == "claims":
        return analysis.claims({e: landscape_files(a.results, cfg.experiment(e)) for e in cfg.ids()}, a.out_dir)
    if a.step == "plan":
        return plan(cfg, a)
    if a.step == "figure":
        return analysis.figure(cfg.present(cfg.figures)[name], spec_inputs(a.results, cfg, cfg.figures, name), a.out)
    raise AssertionError(a.step)


def plan(cfg, a: argparse.Namespace) -> None:
    """Run the pilot, print every job's prediction and the wall time; write ``--json``."""
    import json

    from losslandscapes.plan import model, pilot
    from losslandscapes.storage.artefacts import write_text

    for opt, v in (("--nodes", a.nodes), ("--cores-per-node", a.cores_per_node), ("--pilot-seconds", a.pilot_seconds)):
        if v <= 0:
            raise UsageError(f"{opt} {v}: expected a positive number")
    if a.gpus < 0 or (a.gpus and not (a.gpu_speedup and a.gpu_speedup > 0)):
        raise UsageError("--gpus needs --gpu-speedup, a positive factor (measured: benchmarks/gpu.py)")
    p = pilot.run(cfg, a.pilot_dir or f"results/plan/{cfg.preset}", a.pilot_seconds)
    jobs = model.jobs(cfg, p, a.gpus, a.gpu_speedup or 1.0)
    wall = model.wall_seconds(jobs, a.nodes, a.cores_per_node, a.gpus, cfg.threads)
    out = {"preset": cfg.preset, "nodes": a.nodes, "cores_per_node": a.cores_per_node, "gpus_per_node": a.gpus,
           "gpu_speedup": a.gpu_speedup, "threads": cfg.threads, "pilot_seconds": a.pilot_seconds,
           "startup_s": {k: round(v, 2) for k, v in p.startup_s.items()},
           "jobs": [j.record() for j in jobs], "total_cpu_s": round(sum(j.cpu_s for j in jobs), 1),
           "total_gpu_s": round(sum(j.gpu_s for j in jobs), 1), "wall_s": round(wall, 1)}
    print(model.table(jobs, out))
    if a.json:
        write_text(a.json, json.dumps(out, indent=1) + "\n")


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
    from losslandscapes.config import ConfigError
    from losslandscapes.storage.artefacts import ArtefactError

    try:
        run(a)
    except (UsageError, ConfigError, ArtefactError) as err:
        log.error("step %s: %s", a.step, err)
        return 2
    log.info("step %s finished in %.1f s", a.step, time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
