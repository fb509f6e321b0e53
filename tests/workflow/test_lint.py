"""The workflow is lint-clean (`snakemake --lint`) and formatted (`snakefmt --check`)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ["Snakefile", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "workflow/rules").glob("*.smk"))]


def run(*args):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_snakemake_lint_has_no_findings():
    proc = run("snakemake", "--lint")
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_snakefmt_check_passes():
    proc = run("snakefmt", "--check", *FILES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
