"""A short pilot of every job of a configuration, on this machine, one thread: the measured rates
that ``plan.model`` scales to the configuration's budgets.

The pilot runs the workflow's own steps (``stages``) into ``{workdir}/results`` with the file
layout of a run: every LJAT3 data set and every experiment's training and testing sets in full,
then per experiment a basin-hopping of at most ``DataKind.pilot_chains`` chains for about
``seconds`` (no coverage stop), a connect of at most ``PILOT_ATTEMPTS`` attempts in about
``seconds``, one later draw with one cycle, the metrics (twice: half the classes and all, to part
their fixed cost from their cost per class), the PATHSAMPLE export and the disconnectivity graph;
then the tables, the claims and every figure on what the pilot made. Each experiment's rates are
kept in ``{workdir}/{id}-{digest}.json``, keyed on its pilot settings, and reused by later plans.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from losslandscapes.config import Config, Experiment, derive_seed, digest
from losslandscapes.paths import landscape_files, spec_inputs

log = logging.getLogger(__name__)

PILOT_ATTEMPTS = 24  # connect attempts of a pilot at most
PILOT_DRAWS = 2  # the first draw and one later draw
PILOT_STEPS = 10 ** 6  # steps per chain: a pilot's basin-hopping ends on its time


@dataclass(frozen=True)
class Rates:
    """One experiment's pilot, on this machine with one thread (seconds)."""

    exp: str
    experiment_s: float  # the experiment step (training and testing sets)
    bh_setup_s: float  # basin-hopping step minus its search
    quench_s: float  # search seconds per quench
    counts: list[int]  # class abundances of the pilot's quenches that reached a minimum
    minima_per_class: float  # minima stored per symmetry class
    connect_setup_s: float  # connect step minus its search
    attempt_s: float  # seconds per pair or single-ended attempt (0: no transition states)
    attempts_per_class: float  # attempts per class joined to the global minimum
    new_minima_per_attempt: float
    metrics_fixed_s: float  # metrics step: fixed part ...
    metrics_class_s: float  # ... and seconds per symmetry class
    pathsample_s: float
    disconnectivity_s: float
    draw_s: float  # a later draw besides its quenches (0: one draw only)


@dataclass(frozen=True)
class Pilot:
    """Rates of every job of a configuration; ``startup_s``: a job's process start and imports."""

    ljat3_s: dict  # data set -> seconds
    rates: dict  # experiment id -> Rates
    tables_s: float
    claims_s: float
    figure_s: dict  # figure -> seconds
    startup_s: dict  # "torch" | "plain" -> seconds


def _timed(fn, *args):
    t0 = time.monotonic()
    out = fn(*args)
    return out, time.monotonic() - t0


def pilot_experiment(exp: Experiment, seconds: float) -> Experiment:
    """``exp`` with a pilot's budgets: basin-hopping with capped chains for ``seconds``, connect
    for ``PILOT_ATTEMPTS`` attempts or ``seconds``, one later draw of one cycle. Every other budget
    setting is set to one value, so that presets that differ in budgets only share their pilots."""
    chains = exp.data_kind.pilot_chains
    s = replace(exp.search, chains=min(exp.search.chains, chains), steps=PILOT_STEPS, coverage=None, min_quenches=0,
                max_seconds=seconds)
    c = replace(exp.connect, max_pairs=PILOT_ATTEMPTS, grow_pairs=0, grow_lowest=0, ts_coverage=None,
                max_seconds=seconds)
    draws = min(exp.draws, PILOT_DRAWS)
    d = replace(exp.draw_search, chains=min(exp.draw_search.chains, chains), steps=0, coverage=None, min_quenches=0) \
        if draws > 1 else None
    return replace(exp, search=s, connect=c, draws=draws, draw_search=d)


def startup_seconds() -> dict:
    """Seconds to start a job's Python and import what its step imports (torch or not)."""
    mods = {"torch": "torch, pandas, pyarrow, scipy.sparse.csgraph, losslandscapes.landscape.connect, "
                     "losslandscapes.analysis.metrics, losslandscapes.stages.landscape",
            "plain": "pandas, pyarrow, matplotlib.pyplot, losslandscapes.analysis.figures, losslandscapes.stages.analysis"}
    out = {}
    for k, m in mods.items():
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", f"import {m}"], check=True)
        out[k] = time.monotonic() - t0
    return out


def _metrics_rates(exp, files: dict, sets: dict, auc: dict, tmp: Path) -> tuple[float, float]:
    """(fixed, per class) seconds of the metrics step, from runs on half the classes and on all."""
    from losslandscapes.stages import analysis
    from losslandscapes.storage.artefacts import read_parquet, write_parquet

    mins, meta = read_parquet(files["minima"])
    classes = np.unique(mins["sym_class"].to_numpy())
    half = mins[mins["sym_class"].isin(classes[: max(1, len(classes) // 2)])]
    write_parquet(tmp / "half.parquet", half, meta)
    _, t1 = _timed(analysis.metrics, exp, sets["train"], sets["test"], str(tmp / "half.parquet"), str(tmp / "m.parquet"), auc)
    _, t2 = _timed(analysis.metrics, exp, sets["train"], sets["test"], files["minima"], files["metrics"], auc)
    n1, n2 = half["sym_class"].nunique(), len(classes)
    per = max((t2 - t1) / (n2 - n1), 0.0) if n2 > n1 else t2 / max(n2, 1)
    return max(t2 - per * n2, 0.0), per


def measure_experiment(cfg: Config, exp: Experiment, res: Path, seconds: float, warm: set) -> Rates:
    """Run the pilot of ``exp`` into the results folder ``res``; its ``Rates``. A network shape
    not in ``warm`` first gets one unmeasured quench: the workflow's jobs load the compiled kernels
    from numba's cache, which only the first job of a shape fills."""
    from losslandscapes.stages import analysis, data, landscape
    from losslandscapes.storage.artefacts import read_parquet

    e = pilot_experiment(exp, seconds)
    kind, ds = e.data_kind, cfg.datasets[e.data]
    source = str(res / "data" / "ljat3" / f"{e.data}.parquet") if kind.generated else None
    d = res / "experiments" / e.id
    sets = {"train": str(d / "train.parquet"), "test": str(d / "test.parquet")}
    files = landscape_files(res, e)
    work = res / "work" / e.id
    work.mkdir(parents=True, exist_ok=True)
    for f in list(work.glob("*.sqlite")) + list(work.glob("*.sqlite-*")):
        f.unlink()  # a pilot starts afresh
    _, t_exp = _timed(data.experiment, e.for_step("experiment"), ds, source, sets["train"], sets["test"])
    bh_min = str(res / "landscapes" / e.id / "bh_minima.parquet")
    if e.sizes not in warm:
        w = replace(e, search=replace(e.search, chains=1, steps=0)).for_step("basinhopping")
        landscape.basinhopping(w, sets["train"], str(work / "warmup.sqlite"), str(work / "warmup_minima.parquet"),
                               str(work / "warmup_quenches.parquet"), cfg.device)
        warm.add(e.sizes)
    bh, t_bh = _timed(landscape.basinhopping, e.for_step("basinhopping"), sets["train"], str(work / "bh.sqlite"),
                      bh_min, files["quenches"], cfg.device)
    mins, _ = read_parquet(bh_min)
    q, _ = read_parquet(files["quenches"])
    cls = dict(zip(mins["id"], mins["sym_class"]))
    reached = q["minimum"].to_numpy()
    counts = np.unique([cls[m] for m in reached[reached > 0]], return_counts=True)[1]
    con, t_con = _timed(landscape.connect, e.for_step("connect"), sets["train"], bh_min, str(work / "connect.sqlite"),
                        files["minima"], files["ts"], cfg.device)
    after, _ = read_parquet(files["minima"])
    attempts = con.get("pair_attempts", 0)
    joined = max(con.get("connected_to_gmin", 1) - 1, 1)
    t_draw = 0.0
    if e.draws > 1:
        _, t = _timed(landscape.draws, e.for_step("draws"), ds, source, str(work), files["draws"], cfg.auc, cfg.device)
        t_draw = max(t - e.draw_search.chains * bh["seconds"] / max(len(q), 1), 0.0)
    fixed, per = _metrics_rates(e.for_step("metrics"), files, sets, cfg.auc, work)
    t_ps = t_dc = 0.0
    if e.transition_states:
        _, t_ps = _timed(landscape.pathsample, files["minima"], files["ts"], str(res / "landscapes" / e.id / "pathsample"))
        _, t_dc = _timed(analysis.disconnectivity, files["minima"], files["ts"], files["tree"], cfg.levels)
    return Rates(
        exp=e.id, experiment_s=t_exp, bh_setup_s=max(t_bh - bh["seconds"], 0.0),
        quench_s=bh["seconds"] / max(len(q), 1), counts=[int(c) for c in counts],
        minima_per_class=len(mins) / max(mins["sym_class"].nunique(), 1),
        connect_setup_s=max(t_con - con["seconds"], 0.0), attempt_s=con["seconds"] / attempts if attempts else 0.0,
        attempts_per_class=attempts / joined, new_minima_per_attempt=(len(after) - len(mins)) / attempts if attempts else 0.0,
        metrics_fixed_s=fixed, metrics_class_s=per, pathsample_s=t_ps, disconnectivity_s=t_dc, draw_s=t_draw)


def run(cfg: Config, workdir: str | Path, seconds: float) -> Pilot:
    """The pilot of every job of ``cfg`` (see the module's docstring); reuses stored rates."""
    from losslandscapes.stages import analysis, data

    work = Path(workdir)
    res = work / "results"
    ljat3_s = {}
    for name in cfg.ljat3_datasets():
        out = res / "data" / "ljat3" / f"{name}.parquet"
        key = work / f"ljat3-{name}-{digest(cfg.step_settings('ljat3', name))}.json"
        if key.exists() and out.exists():
            ljat3_s[name] = json.loads(key.read_text())["seconds"]
            continue
        _, ljat3_s[name] = _timed(data.ljat3, name, cfg.datasets[name]["L"], cfg.ljat3, derive_seed(cfg.seed, name),
                                  cfg.device, str(out))
        key.write_text(json.dumps({"seconds": ljat3_s[name]}))
    rates, warm = {}, set()
    for exp in cfg.experiments:
        e = pilot_experiment(exp, seconds)
        key = work / f"{exp.id}-{digest({'pilot': e.as_dict(), 'dataset': cfg.datasets[e.data], 'auc': cfg.auc, 'seconds': seconds})}.json"
        if key.exists() and all(Path(f).exists() for f in landscape_files(res, e).values()):
            rates[exp.id] = Rates(**json.loads(key.read_text()))
            continue
        log.info("pilot of %s", exp.id)
        rates[exp.id] = measure_experiment(cfg, exp, res, seconds, warm)
        key.write_text(json.dumps(asdict(rates[exp.id])))
        log.info("%s: %s", exp.id, rates[exp.id])
    pilot_cfg = replace(cfg, experiments=tuple(pilot_experiment(e, seconds) for e in cfg.experiments))
    tables = pilot_cfg.present(pilot_cfg.tables)
    inputs = {e: f for t in tables for e, f in spec_inputs(res, pilot_cfg, pilot_cfg.tables, t).items()}
    _, t_tables = _timed(analysis.tables, tables, inputs, str(res / "tables"))
    t_claims = 0.0
    if pilot_cfg.paper_run:
        _, t_claims = _timed(analysis.claims, {e.id: landscape_files(res, e) for e in pilot_cfg.experiments},
                             str(res / "tables"))
    figure_s = {}
    for name, spec in pilot_cfg.present(pilot_cfg.figures).items():
        _, figure_s[name] = _timed(analysis.figure, spec, spec_inputs(res, pilot_cfg, pilot_cfg.figures, name),
                                   str(res / "figures" / f"{name}.png"))
    return Pilot(ljat3_s, rates, t_tables, t_claims, figure_s, startup_seconds())
