"""The real `snakemake` command on the smoke preset, twice in two directories."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: slurm_cluster

ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns("results", ".snakemake", ".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache")


def run_snakemake(cwd: Path, *args, check=True, env=None):
    env = dict(env or os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def checkout(tmp: Path, name: str) -> Path:
    dest = tmp / name
    shutil.copytree(ROOT, dest, ignore=IGNORE)
    return dest


def parquet_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "results").rglob("*.parquet"))}


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wf")
    dirs = [checkout(tmp, name) for name in ("first", "second-checkout")]
    for d in dirs:
        run_snakemake(d, "--cores", "2", "--config", "preset=smoke")
    return dirs


@pytest.mark.slow
def test_smoke_preset_produces_every_table_and_figure(smoke_runs):
    res = smoke_runs[0] / "results"
    for name in ("table1", "table3", "table4"):
        df = pd.read_parquet(res / f"tables/{name}.parquet")
        assert len(df) >= 1 and {"min", "min_sym"} <= set(df.columns)
    assert (res / "tables/comparison.md").read_text().count("| D1-e0 |") > 5
    for fig in ("figure1", "figure2", "figure5", "figure6", "figure8"):
        png = (res / f"figures/{fig}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    for f in ("min.data", "ts.data", "points.min", "points.ts"):
        assert (res / "landscapes/D1-e0/pathsample" / f).exists()
    minima = pd.read_parquet(res / "landscapes/D1-e0/minima.parquet")
    assert (minima["n_neg_eig"] == 0).all() and (minima["rms_grad"] <= 1e-7).all()  # smoke: tight_gtol 1e-7
    ts = pd.read_parquet(res / "landscapes/D1-e0/ts.parquet")
    assert (ts["n_neg_eig"] == 1).all()
    quenches = pd.read_parquet(res / "landscapes/D1-e0/quenches.parquet")
    reached = quenches["minimum"][quenches["minimum"] > 0]
    assert len(quenches) >= 8 and set(reached) <= set(minima["id"])  # smoke: 4 chains x 2 quenches
    table1 = pd.read_parquet(res / "tables/table1.parquet")
    assert {"quenches", "coverage", "chao", "connected", "funnel", "acceptance", "draws"} <= set(table1.columns)
    draws = pd.read_parquet(res / "landscapes/D1-e0/draws.parquet")  # smoke: draws 4, 4 chains x 2 quenches each
    assert draws["draw"].tolist() == [1, 2, 3] and (draws["quenches"] >= 1).all()
    assert table1.set_index("experiment").loc["D1-e0", "draws"] == 4
    claims = pd.read_parquet(res / "tables/claims.parquet")
    assert len(claims) >= 12 and set(claims["verdict"]) <= {"holds", "contradicted", "undecided", "not testable"}
    assert "claims, " in (res / "tables/claims.md").read_text()
    data = pd.read_parquet(res / "data/ljat3/D1.parquet")
    assert len(data) == 4000 and {"r12", "r13", "r23", "label", "energy", "converged", "iterations", "split"} <= set(data.columns)


@pytest.mark.slow
def test_reruns_in_another_directory_are_byte_identical(smoke_runs):
    a, b = (parquet_hashes(d) for d in smoke_runs)
    assert a.keys() == b.keys() and len(a) > 20
    assert a == b


@pytest.mark.slow
def test_bad_config_fails_before_any_job(tmp_path):
    d = checkout(tmp_path, "bad")
    proc = run_snakemake(d, "--cores", "1", "--config", "preset=huge", check=False)
    assert proc.returncode != 0
    assert "preset: unknown preset 'huge'" in proc.stdout + proc.stderr
    assert not (d / "results").exists()


def need_slurm() -> None:
    """Skip where a SLURM cluster cannot be installed on this machine."""
    from slurm_cluster import ensure_installed

    reason = ensure_installed()
    if reason:
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)


def run_on_slurm(tmp_path: Path, d: Path, *args, columns: str) -> tuple:
    """``snakemake ARGS --profile workflow/profiles/slurm`` in ``d`` on a real single-node cluster:
    (its process, squeue's rows of every job with the fields of ``columns``, split at "|")."""
    from slurm_cluster import Cluster

    cluster = Cluster(tmp_path / "cluster")
    try:
        cluster.start()
        proc = run_snakemake(
            d, *args, "--profile", "workflow/profiles/slurm",
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5",
            env=cluster.env, check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}\n{cluster.log_tail()}")
        rows = subprocess.run(["squeue", "-t", "all", "-h", "-o", columns], env=cluster.env, capture_output=True,
                              text=True, check=True).stdout.split()
    finally:
        cluster.stop()
    return proc, [row.split("|") for row in rows]


THREADS = 2  # per landscape job on the SLURM cluster (the local runs take config.yaml's 1)


@pytest.mark.slow
def test_smoke_preset_on_a_real_slurm_cluster(smoke_runs, tmp_path):
    """The smoke preset through --profile workflow/profiles/slurm gives the local run's bytes, and
    SLURM gives each job the CPUs of its rule's threads."""
    need_slurm()
    d = checkout(tmp_path, "slurm")
    proc, jobs = run_on_slurm(tmp_path, d, "--config", "preset=smoke", f"threads={THREADS}", "device=cpu",
                              columns="%k|%C|%b")
    assert "sbatch" in proc.stdout + proc.stderr or "SLURM" in proc.stdout + proc.stderr
    cpus = {}  # rule -> CPUs allocated to its jobs (the plugin's comment starts with rule_NAME)
    for comment, n_cpus, gres in jobs:
        rule = comment.removeprefix("rule_").split("_wildcards")[0]
        cpus.setdefault(rule, set()).add(int(n_cpus))
        assert "gpu" not in gres  # device: cpu, so no job asks for a GPU (test_only_mnist_landscapes_ask_for_a_gpu)
    for rule in ("basinhopping", "connect", "metrics"):  # rules with threads: the configuration's
        assert cpus.get(rule) == {THREADS}, cpus
    assert parquet_hashes(d) == parquet_hashes(smoke_runs[0])  # any number of threads: the same bytes


@pytest.mark.slow
def test_a_job_past_its_slurm_time_limit_is_resubmitted_and_resumes(tmp_path):
    """SLURM kills a basin-hopping job at its time limit (1 minute on the first attempt); the
    profile's retry resubmits it, it resumes from its database, and its minima and quenches equal
    those of an uninterrupted local run (run beside it on the other core)."""
    import yaml

    need_slurm()
    dirs = {name: checkout(tmp_path, name) for name in ("slurm", "local")}
    for d in dirs.values():
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        smoke = cfg["presets"]["smoke"]
        smoke["only"] = ["D1-e0"]
        smoke["every_experiment"]["n_train"] = 1000
        # 8 x 171 quenches (after numba compiles, about a minute): well past the first attempt's
        # minute plus SLURM's 30-second polling of time limits on this machine and on CI's
        smoke["search"].update(chains=8, steps=170, coverage=None)
        (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/landscapes/D1-e0/bh_minima.parquet"
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    # targets before the options that take several values (--config, --set-resources)
    local = subprocess.Popen([sys.executable, "-m", "snakemake", target, "--cores", "1", "--config", "preset=smoke"],
                             cwd=dirs["local"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _, states = run_on_slurm(tmp_path, dirs["slurm"], target, "--config", "preset=smoke", "device=cpu",
                                 "--set-resources", "basinhopping:runtime=1 if attempt == 1 else 30", columns="%k|%T")
    finally:
        assert local.wait(timeout=900) == 0
    hopping = [state for comment, state in states if comment.startswith("rule_basinhopping")]
    assert sorted(hopping) == ["COMPLETED", "TIMEOUT"], states
    assert "resuming basin-hopping" in (dirs["slurm"] / "results/logs/basinhopping/D1-e0.log").read_text()
    for name in ("bh_minima", "quenches"):
        a, b = (pd.read_parquet(d / f"results/landscapes/D1-e0/{name}.parquet") for d in dirs.values())
        pd.testing.assert_frame_equal(a, b)


def test_only_mnist_landscapes_ask_for_a_gpu():
    """With device auto, MNIST's basin-hopping jobs ask a cluster for a GPU and no other job does;
    with device cpu none does (the dry run's resources)."""
    for device, expected in (("auto", {("basinhopping", "MNIST-e0")}), ("cpu", set())):
        out = run_snakemake(ROOT, "-n", "--config", "preset=smoke", f"device={device}").stdout
        jobs = out.split("\nrule ")[1:]
        gpu = {(j.split(":")[0], j.split("wildcards: exp=")[1].split()[0]) for j in jobs if "gpu=1" in j}
        assert gpu == expected and len(jobs) > 20


@pytest.mark.slow
def test_a_user_config_file_runs_its_own_experiments_to_a_table_and_figures(tmp_path):
    d = checkout(tmp_path, "user")
    run_snakemake(d, "--cores", "2", "--configfile", "examples/xor.yaml", "--config", "preset=smoke")
    res = d / "results"
    table = pd.read_parquet(res / "tables/yours.parquet")
    assert table["experiment"].tolist() == ["xor-net", "xor-net-e20"] and (table["min"] >= 1).all()
    for fig in ("yours_disconnectivity", "yours_auc"):
        assert (res / f"figures/{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (res / "landscapes").iterdir()) == ["xor-net", "xor-net-e20"]  # no paper experiment
    assert not (res / "tables/claims.md").exists()  # nor the paper's claims


@pytest.mark.slow
def test_killed_landscape_job_resumes_without_loss(tmp_path):
    """SIGKILL a basin-hopping job mid-run; the rerun keeps every committed minimum and completes."""
    import signal
    import sqlite3
    import time

    import numpy as np
    import yaml

    d = checkout(tmp_path, "kill")
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["presets"]["smoke"]["only"] = ["D1-e0"]
    # 4 chains x 101 quenches, a few seconds on 2 cores: long enough that polling every 0.1 s
    # sees 6 committed minima well before the job ends (12 steps finished between two polls in CI)
    cfg["presets"]["smoke"]["search"].update(steps=100, coverage=None)
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    run_snakemake(d, "--cores", "2", "--config", "preset=smoke", "--until", "experiment")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "preset=smoke"],
                            cwd=d, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = d / "results/work/D1-e0/basinhopping.sqlite"
    committed = []
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    committed = con.execute("SELECT id, params FROM minima ORDER BY id").fetchall()
            except sqlite3.DatabaseError:
                continue
            if len(committed) >= 6:
                break
    assert proc.poll() is None, "the job finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(committed) >= 6
    assert not (d / "results/landscapes/D1-e0/bh_minima.parquet").exists()
    run_snakemake(d, "--unlock")
    # a job that finished just before the kill keeps Snakemake's incomplete mark (README: Interrupted runs)
    run_snakemake(d, "--cores", "2", "--config", "preset=smoke", "--rerun-incomplete")
    final = pd.read_parquet(d / "results/landscapes/D1-e0/bh_minima.parquet")
    for (i, blob), row in zip(committed, final.itertuples()):
        assert row.id == i and np.array_equal(np.frombuffer(blob, np.float64), np.asarray(row.params))
    assert len(final) >= len(committed)
    assert "resuming basin-hopping" in (d / "results/logs/basinhopping/D1-e0.log").read_text()
