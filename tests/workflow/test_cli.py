"""The command line: every step has named, typed options, and runs by hand on the repository's config."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from losslandscapes.cli import OPTIONS, ROLES, STEPS, parser

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "losslandscapes", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("step", sorted(STEPS))
def test_help_lists_every_option_of_a_step(step):
    text = parser()._subparsers._group_actions[0].choices[step].format_help()
    for opt, role in STEPS[step][1]:
        assert opt in text and OPTIONS[opt].split()[0] in text and ROLES[role] in " ".join(text.split())
    assert "--threads" in text and "--kwargs" not in text


def test_a_step_runs_by_hand_with_the_repository_config(tmp_path):
    proc = cli("experiment", "--config", "preset=smoke", "--experiment", "MNIST-e0",
               "--train", str(tmp_path / "train.parquet"), "--test", str(tmp_path / "test.parquet"))
    assert proc.returncode == 0, proc.stderr
    train = pd.read_parquet(tmp_path / "train.parquet")
    smoke = yaml.safe_load((ROOT / "config.yaml").read_text())["presets"]["smoke"]["every_experiment"]
    assert len(train) == smoke["n_train"] != 1000 and {"x", "label"} <= set(train.columns)  # --set preset=smoke took


def test_bad_options_are_named_without_a_traceback(tmp_path):
    cases = [
        (["metrics", "--experiment", "D9-e0", "--train", "a", "--test", "b", "--minima", "c", "--out", "d"],
         "--experiment 'D9-e0': not an experiment of this configuration"),
        (["tables", "--config", "preset", "--results", "r", "--out-dir", "o"], "--config 'preset': expected KEY=VALUE"),
        (["tables", "--configfile", "nowhere.yaml", "--results", "r", "--out-dir", "o"], "--configfile nowhere.yaml: no such file"),
        (["experiment", "--experiment", "D1-e0", "--train", "a", "--test", "b"], "--source: needed for experiment D1-e0"),
        (["figure", "--figure", "figure9", "--results", "r", "--out", "o"], "--figure 'figure9': not a figure"),
        (["disconnectivity", "--expect", "0123456789abcdef", "--minima", "m", "--ts", "t", "--out", "o"],
         "--expect 0123456789abcdef: the configuration gives this step other settings"),
    ]
    for args, message in cases:
        proc = cli(*args)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    proc = cli("basinhopping", "--experiment", "D1-e0")
    assert proc.returncode == 2 and "--train" in proc.stderr  # argparse names the missing options


def test_expect_accepts_the_digest_the_workflow_plans():
    from losslandscapes.config import digest, load_yaml, resolve

    cfg = resolve(load_yaml(ROOT / "config.yaml"))
    planned = digest(cfg.step_settings("disconnectivity"))
    proc = cli("disconnectivity", "--expect", planned, "--minima", "no.parquet", "--ts", "no.parquet", "--out", "o")
    assert proc.returncode == 2 and "--expect" not in proc.stderr and "no.parquet" in proc.stderr
