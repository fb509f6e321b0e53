"""Helpers for the hand-run benchmarks: timing and a results file per benchmark."""

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def rate(fn, seconds=1.0) -> float:
    """Calls per second of ``fn()`` over about ``seconds`` (after one warm-up call)."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def write(name: str, data: dict) -> Path:
    """Write ``data`` with machine facts to ``benchmarks/results/{name}.json`` and print it."""
    RESULTS.mkdir(exist_ok=True)
    data = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    return path


def lowest_joined(minima, ts, n: int = 10) -> int:
    """How many of the ``n`` lowest symmetry classes of a database (its exported ``minima`` and
    ``ts`` tables, DataFrames) are joined to the global minimum's."""
    import numpy as np

    from losslandscapes.analysis.disconnectivity import barriers_to_gmin, class_graph

    _, energy, ts_energy, ts_pairs = class_graph(minima, ts)
    return int(np.isfinite(barriers_to_gmin(energy, ts_energy, ts_pairs)[np.argsort(energy)[:n]]).sum())
