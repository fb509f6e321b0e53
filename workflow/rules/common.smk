import json
import re

from losslandscapes.config import derive_seed

RES = "results"
ENV = "../../envs/losslandscapes.yaml"


wildcard_constraints:
    dataset="|".join(map(re.escape, CFG.ljat3_datasets())) or "NONE",
    exp="|".join(map(re.escape, CFG.ids())),


def kwargs(**kw):
    """A stage function's keyword arguments as JSON for the command line."""
    return json.dumps(kw, sort_keys=True, default=str)


def exp_dict(wildcards, drop=(), draws=False):
    """The experiment's settings, without the sections in ``drop`` (so that, e.g., a new
    pathway budget does not rerun basin-hopping) and, unless ``draws``, without its later draws.
    """
    d = CFG.experiment(wildcards.exp).as_dict()
    drop = set(drop) | (set() if draws else {"draws", "draw_search"})
    return {k: v for k, v in d.items() if k not in drop}


def critical_first(wildcards):
    """Job priority: the experiments whose chain of jobs is longest start first (2: every class
    connected, 1: the lowest classes, 0: minima only), so that two cores are not left with one
    long pathway search at the end of a run. Scheduling only: outputs do not change."""
    e = CFG.experiment(wildcards.exp)
    if not e.transition_states:
        return 0
    return 2 if e.connect.connect_lowest is None else 1


def landscape_files(exp_id):
    d = f"{RES}/landscapes/{exp_id}"
    files = {
        "minima": f"{d}/minima.parquet",
        "ts": f"{d}/ts.parquet",
        "metrics": f"{d}/metrics.parquet",
        "quenches": f"{d}/quenches.parquet",
    }
    if CFG.experiment(exp_id).transition_states:
        files["tree"] = f"{d}/disconnectivity.parquet"
    if CFG.experiment(exp_id).draws > 1:
        files["draws"] = f"{d}/draws.parquet"
    return files


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
    return [f"{RES}/data/ljat3/{exp.data}.parquet"] if exp.kind == "ljat3" else []


def uses_gpu(wildcards):
    """MNIST landscapes ask a cluster for a GPU; the code uses it when `device` allows."""
    return int(CFG.experiment(wildcards.exp).kind == "mnist" and CFG.device != "cpu")


def spec_inputs(specs, name):
    return {e: landscape_files(e) for e in CFG.present(specs)[name]["experiments"]}


def flat_inputs(specs, names):
    return sorted(
        {
            p
            for n in names
            for files in spec_inputs(specs, n).values()
            for p in files.values()
        }
    )
