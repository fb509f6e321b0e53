"""Command line: ``losslandscapes STAGE --kwargs JSON [--threads N]``.

Each stage is a function of ``losslandscapes.stages``; ``--kwargs`` holds its
keyword arguments as JSON, with an experiment given as its full dict. The workflow's rules call
exactly this; a user can too. Logs go to standard error with timestamps.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

STAGES = {
    "ljat3": "stages.data.ljat3_dataset",
    "experiment": "stages.data.experiment_data",
    "basinhopping": "stages.landscape.sample_minima",
    "pathways": "stages.landscape.find_pathways",
    "draws": "stages.landscape.independent_draws",
    "pathsample": "stages.landscape.pathsample_export",
    "metrics": "stages.analysis.experiment_metrics",
    "disconnectivity": "stages.analysis.disconnectivity_tree",
    "tables": "stages.analysis.make_tables",
    "claims": "stages.analysis.make_claims",
    "figure": "stages.analysis.make_figure",
}
TORCH_STAGES = {"ljat3", "basinhopping", "pathways", "draws", "metrics"}  # the others never import torch (faster start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="losslandscapes", description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("--kwargs", required=True, help="keyword arguments of the stage function, as JSON")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import importlib

    if a.stage in TORCH_STAGES:
        import torch

        torch.set_num_threads(max(1, a.threads))
    from losslandscapes.workers import serial_blas, set_threads

    serial_blas()  # before any stage: BLAS results must not depend on the machine's cores
    set_threads(a.threads)
    module, func = STAGES[a.stage].rsplit(".", 1)
    fn = getattr(importlib.import_module(f"losslandscapes.{module}"), func)
    kwargs = json.loads(a.kwargs)
    if "exp" in kwargs:
        from losslandscapes.stages.data import experiment_from_dict

        kwargs["exp"] = experiment_from_dict(kwargs["exp"])
    t0 = time.monotonic()
    logging.getLogger("losslandscapes").info("stage %s started", a.stage)
    fn(**kwargs)
    logging.getLogger("losslandscapes").info("stage %s finished in %.1f s", a.stage, time.monotonic() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
