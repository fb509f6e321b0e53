"""The plan's model: quenches and attempts a budget needs, and the wall time of a job graph, by hand;
the plan command end to end on the smoke preset."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import settings
from losslandscapes.config import resolve
from losslandscapes.landscape.coverage import classes_at, coverage_at
from losslandscapes.plan.model import Job, attempts_needed, classes_after, quenches_needed, wall_seconds
from losslandscapes.plan.pilot import Rates

ROOT = Path(__file__).resolve().parents[2]


def experiment(search=None, connect=None):
    e = resolve(settings.raw_config()).experiment("D1-e0")
    return replace(e, search=search or e.search, connect=connect or e.connect)


def rates(**over) -> Rates:
    base = dict(exp="D1-e0", experiment_s=0, bh_setup_s=0, quench_s=0.1, counts=[], minima_per_class=1,
                connect_setup_s=0, attempt_s=1, attempts_per_class=2, new_minima_per_attempt=0, metrics_fixed_s=0,
                metrics_class_s=0, pathsample_s=0, disconnectivity_s=0, draw_s=0)
    return Rates(**{**base, **over})


def test_quenches_follow_the_coverage_extrapolation_within_the_budget():
    counts = np.array([1] * 30 + [2] * 10 + [5] * 10)  # n 100, coverage 0.7
    s = settings.search(chains=8, steps=124, coverage=0.9, min_quenches=100)
    q = quenches_needed(experiment(s), counts)
    assert q % 8 == 0 and coverage_at(counts, q) >= 0.9 > coverage_at(counts, q - 8)
    assert quenches_needed(experiment(replace(s, steps=10)), counts) == 88  # the budget 8 x 11 caps it
    assert quenches_needed(experiment(replace(s, coverage=None)), counts) == 8 * 125
    assert quenches_needed(experiment(s), np.array([3, 4, 5])) == 104  # complete: min_quenches, whole cycles
    assert quenches_needed(experiment(s), np.array([1])) == 8 * 125  # no class twice: no sign of an end
    assert classes_after(np.array([1, 1]), 500) == 500
    assert quenches_needed(experiment(replace(s, coverage=0.999)), counts) == 8 * 125  # beyond 3 x the pilot


def test_classes_continue_past_the_extrapolation_range_at_the_rate_of_new_classes_there():
    counts = np.array([1] * 30 + [2] * 10 + [5] * 10)  # n 100
    assert classes_after(counts, 300) == pytest.approx(classes_at(counts, 300))
    rate = 1 - coverage_at(counts, 300)
    assert classes_after(counts, 1300) == pytest.approx(classes_at(counts, 300) + 1000 * rate)
    assert classes_after(counts, 1300) > classes_at(counts, 1300)  # Chao1 is a lower bound


def test_attempts_per_class_joined_up_to_the_budget_plus_growth():
    c = settings.connect(max_pairs=1000, grow_pairs=2, connect_lowest=None)
    r = rates(attempts_per_class=2.5)
    assert attempts_needed(experiment(connect=c), 41, r) == 100 + 2  # 40 classes to join
    assert attempts_needed(experiment(connect=replace(c, grow_pairs=2000, grow_lowest=100)), 8, r) == 18 + 28  # 8 x 7 / 2
    assert attempts_needed(experiment(connect=replace(c, connect_lowest=11)), 41, r) == 25 + 2
    assert attempts_needed(experiment(connect=replace(c, max_pairs=30)), 41, r) == 30 + 2
    assert attempts_needed(replace(experiment(connect=c), transition_states=False), 41, r) == 0


def test_wall_time_of_a_job_graph_by_hand():
    a = Job("basinhopping", "A", cpu_s=40, width=4)
    b = Job("connect", "A", cpu_s=20, after=(("basinhopping", "A"),))
    c = Job("basinhopping", "B", cpu_s=30)
    jobs = [a, b, c]
    assert wall_seconds(jobs, 1, 1) == pytest.approx(90)  # one core: everything in turn
    assert wall_seconds(jobs, 1, 2) == pytest.approx(60)  # a then b beside c
    assert wall_seconds(jobs, 1, 4, threads=4) == pytest.approx(40)  # a holds the 4 cores for 10 s, then b beside c
    assert wall_seconds(jobs, 2, 4, threads=4) == pytest.approx(30)  # c from the start on the second node
    gpu = Job("basinhopping", "M", cpu_s=2, gpu_s=8)
    assert wall_seconds([gpu, c], 1, 1, gpus=1) == pytest.approx(40)  # the GPU job holds the one core
    assert wall_seconds([gpu, c], 1, 2, gpus=1) == pytest.approx(30)
    with pytest.raises(ValueError, match="never start"):
        wall_seconds([b], 1, 1)


def test_plan_predicts_every_job_of_the_smoke_preset(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "losslandscapes", "plan", "--config", "preset=smoke", "threads=4",
                           "--pilot-dir", str(tmp_path / "pilot"), "--pilot-seconds", "1", "--json",
                           str(tmp_path / "plan.json"), "--nodes", "2", "--cores-per-node", "4"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    cfg = resolve(settings.raw_config(preset="smoke"))
    jobs = {(j["rule"], j["exp"]) for j in plan["jobs"]}
    for e in cfg.ids():
        assert {("basinhopping", e), ("connect", e), ("metrics", e), ("experiment", e)} <= jobs
    assert {("draws", e.id) for e in cfg.experiments if e.draws > 1} <= jobs
    assert {("figure", f) for f in cfg.present(cfg.figures)} <= jobs and ("ljat3", "D1") in jobs
    assert all(set(j) == {"rule", "exp", "cpu_s", "gpu_s", "quenches", "pair_attempts"} for j in plan["jobs"])
    assert all(j["cpu_s"] > 0 for j in plan["jobs"])
    assert plan["total_cpu_s"] == pytest.approx(sum(j["cpu_s"] for j in plan["jobs"]), abs=0.1 * len(jobs))
    assert plan["threads"] == 4  # --config takes several KEY=VALUE, as Snakemake's does
    assert plan["wall_s"] >= plan["total_cpu_s"] / 8 - 1  # 8 cores in all
    assert "| all |" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "losslandscapes", "plan", "--gpus", "1"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--gpu-speedup" in bad.stderr
