"""The command line: every step has named, typed options, and runs by hand on the repository's config."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from losslandscapes.cli import OPTIONS, STEPS, parser

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "losslandscapes", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("step", sorted(STEPS))
def test_help_lists_every_option_of_a_step(step):
    text = parser()._subparsers._group_actions[0].choices[step].format_help()
    for opt in STEPS[step][1]:
        assert opt in text and OPTIONS[opt][0].split()[0] in text
    assert "--threads" in text and "json" not in text.lower()


def test_a_step_runs_by_hand_with_the_repository_config(tmp_path):
    proc = cli("experiment", "--config", "config.yaml", "--set", "preset=smoke", "--experiment", "MNIST-e0",
               "--train", str(tmp_path / "train.parquet"), "--test", str(tmp_path / "test.parquet"))
    assert proc.returncode == 0, proc.stderr
    train = pd.read_parquet(tmp_path / "train.parquet")
    smoke = yaml.safe_load((ROOT / "config.yaml").read_text())["presets"]["smoke"]["every_experiment"]
    assert len(train) == smoke["n_train"] != 1000 and {"x", "label"} <= set(train.columns)  # --set preset=smoke took


def test_an_unknown_experiment_or_a_bad_override_is_named():
    proc = cli("metrics", "--config", "config.yaml", "--experiment", "D9-e0", "--train", "a", "--test", "b",
               "--minima", "c", "--out", "d")
    assert proc.returncode != 0 and "no experiment with id 'D9-e0'" in proc.stderr
    proc = cli("tables", "--config", "config.yaml", "--set", "preset", "--results", "r", "--out-dir", "o")
    assert proc.returncode != 0 and "--set 'preset': expected KEY=VALUE" in proc.stderr
    proc = cli("basinhopping", "--config", "config.yaml", "--experiment", "D1-e0")
    assert proc.returncode == 2 and "--train" in proc.stderr  # argparse names the missing options
