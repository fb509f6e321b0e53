import re
import shlex

import yaml

from losslandscapes.config import digest

from losslandscapes.paths import landscape_files as _landscape_files
from losslandscapes.paths import spec_inputs as _spec_inputs

RES = "results"
RESOLVED = f"{RES}/config.yaml"  # the configuration of this run, which every job reads
ENV = "../../envs/losslandscapes.yaml"


wildcard_constraints:
    dataset="|".join(map(re.escape, CFG.ljat3_datasets())) or "NONE",
    exp="|".join(map(re.escape, CFG.ids())),


def write_resolved(path, cfg):
    """Write the merged configuration ``cfg`` to ``path`` (atomically, and only if it changed):
    every job reads its settings there (``--config``), as a user can."""
    text = yaml.safe_dump(cfg, sort_keys=True)
    if os.path.exists(path) and open(path).read() == text:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


write_resolved(RESOLVED, config)


def step_digest(step):
    """The digest of what ``step`` reads from the configuration (``Config.step_settings``) for
    a job's experiment, data set or figure: the rule's rerun trigger, and what the job checks
    that it was given (``--expect``)."""

    def of(w):
        name = w.get("exp") or w.get("dataset") or w.get("figure")
        return digest(CFG.step_settings(step, name))

    return of


def critical_first(wildcards):
    """Job priority: the experiments whose chain of jobs is longest start first (2: every class
    connected, 1: the lowest classes, 0: minima only), so that two cores are not left with one
    long pathway search at the end of a run. Scheduling only: outputs do not change."""
    e = CFG.experiment(wildcards.exp)
    if not e.transition_states:
        return 0
    return 2 if e.connect.connect_lowest is None else 1


def landscape_files(exp_id):
    return _landscape_files(RES, CFG.experiment(exp_id))


def all_outputs():
    out = [f"{RES}/tables/{name}.parquet" for name in CFG.present(CFG.tables)]
    out += [f"{RES}/tables/comparison.md"] if CFG.present(CFG.tables) else []
    out += [f"{RES}/tables/claims.md"] if CFG.paper_run else []
    out += [f"{RES}/figures/{name}.png" for name in CFG.present(CFG.figures)]
    for e in CFG.ids(with_ts=True):
        out += [f"{RES}/landscapes/{e}/pathsample/min.data"]
    for e in CFG.ids():
        out += list(landscape_files(e).values())
    return out


def experiment_source(wildcards):
    exp = CFG.experiment(wildcards.exp)
    return [f"{RES}/data/ljat3/{exp.data}.parquet"] if exp.data_kind.generated else []


def uses_gpu(wildcards):
    """MNIST landscapes ask a cluster for a GPU; the code uses it when `device` allows."""
    return int(CFG.experiment(wildcards.exp).data_kind.gpu and CFG.device != "cpu")


def spec_inputs(specs, name):
    return _spec_inputs(RES, CFG, specs, name)


def flat_inputs(specs, names):
    return sorted(
        {
            p
            for n in names
            for files in spec_inputs(specs, n).values()
            for p in files.values()
        }
    )
