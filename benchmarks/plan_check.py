"""The plan's prediction beside a measured run: job seconds per rule, per landscape job, and in all;
writes ``benchmarks/results/plan_check.json`` and prints the Markdown tables of docs/performance.md.

    python -m losslandscapes plan --config preset=standard --json plan.json
    python benchmarks/plan_check.py plan.json RESULTS_DIR

RESULTS_DIR: the ``results/`` of a finished run of the same preset on the same machine (its
``benchmarks/`` holds each job's seconds, as Snakemake's ``benchmark:`` files). A job's seconds
are wall seconds with one thread per job, which are its CPU-seconds.
"""

import json
import sys
from pathlib import Path

from common import write

plan = json.loads(Path(sys.argv[1]).read_text())
res = Path(sys.argv[2])
DIRS = {"figure": "figures"}  # rule -> its benchmark folder where the two differ


def measured(rule: str, exp) -> float:
    d = res / "benchmarks" / DIRS.get(rule, rule)
    f = d / f"{exp}.tsv" if exp else d.with_suffix(".tsv")
    return float(f.read_text().splitlines()[1].split()[0])


def counts(rule: str, exp) -> dict:
    """The measured run's quenches (basin-hopping) or pair attempts (connect) of a landscape."""
    from losslandscapes.storage.artefacts import read_parquet

    d = res / "landscapes" / str(exp)
    if rule == "basinhopping":
        return {"measured_quenches": len(read_parquet(d / "quenches.parquet")[0])}
    if rule == "connect":
        return {"measured_pair_attempts": read_parquet(d / "ts.parquet")[1]["stats"].get("pair_attempts", 0)}
    return {}


jobs = [{**j, "measured_s": round(measured(j["rule"], j["exp"]), 1), **counts(j["rule"], j["exp"])} for j in plan["jobs"]]
rules = {}
for j in jobs:
    r = rules.setdefault(j["rule"], {"jobs": 0, "predicted_s": 0.0, "measured_s": 0.0})
    r["jobs"] += 1
    r["predicted_s"] += j["cpu_s"] + j["gpu_s"]
    r["measured_s"] += j["measured_s"]
for r in rules.values():
    r["ratio"] = round(r["predicted_s"] / r["measured_s"], 2)
    r["predicted_s"], r["measured_s"] = round(r["predicted_s"], 1), round(r["measured_s"], 1)
total_p, total_m = sum(r["predicted_s"] for r in rules.values()), sum(r["measured_s"] for r in rules.values())
out = {"preset": plan["preset"], "pilot_seconds": plan["pilot_seconds"], "per_rule": rules,
       "total": {"predicted_s": round(total_p, 1), "measured_s": round(total_m, 1), "ratio": round(total_p / total_m, 2)},
       "worst_rule_ratio": max((max(r["ratio"], 1 / r["ratio"]) for r in rules.values())), "jobs": jobs}
write("plan_check", out)

print("| rule | jobs | predicted s | measured s | predicted / measured |\n|---|---|---|---|---|")
for k, r in rules.items():
    print(f"| {k} | {r['jobs']} | {r['predicted_s']:,.0f} | {r['measured_s']:,.0f} | {r['ratio']:.2f} |")
print(f"| all | {len(jobs)} | {total_p:,.0f} | {total_m:,.0f} | {total_p / total_m:.2f} |\n")
print("| landscape | basin-hopping s | quenches | connect s | pair attempts |\n|---|---|---|---|---|")
by = {(j["rule"], j["exp"]): j for j in jobs}
for e in dict.fromkeys(j["exp"] for j in jobs if j["rule"] == "basinhopping"):
    b, c = by["basinhopping", e], by["connect", e]
    print(f"| {e} | {b['cpu_s'] + b['gpu_s']:,.0f} / {b['measured_s']:,.0f} | {b['quenches']} / {b['measured_quenches']} "
          f"| {c['cpu_s']:,.0f} / {c['measured_s']:,.0f} | {c['pair_attempts']} / {c['measured_pair_attempts']} |")
