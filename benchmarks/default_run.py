"""What a finished default run measured: job seconds per rule and, per landscape of Tables 1, 2
and 4, how complete its sample is and how many of its lowest 10 classes are joined to the global
minimum (Figure 8's low-lying region); writes
``benchmarks/results/default_run.json`` and prints the Markdown tables of docs/performance.md.

    python benchmarks/default_run.py RESULTS_DIR COMMIT [START INSTALLED END]

RESULTS_DIR: the ``results/`` of a finished ``snakemake --cores 2`` from a fresh clone of COMMIT;
START, INSTALLED, END: Unix times of the clone, of the end of the install and of Snakemake's end.
"""

import json
import sys
from pathlib import Path

import pandas as pd
from common import lowest_joined, write


res = Path(sys.argv[1])
commit = sys.argv[2]
times = [int(t) for t in sys.argv[3:6]]
if len(times) not in (0, 3):
    sys.exit("give START, INSTALLED and END together, or none of them")


def job_seconds(rule: str, exp: str) -> float:
    """Seconds of one job; ``connect`` was called ``pathways`` before the packages by concept."""
    for name in (rule, {"connect": "pathways"}.get(rule, rule)):
        f = res / "benchmarks" / name / f"{exp}.tsv"
        if f.exists():
            return float(f.read_text().splitlines()[1].split()[0])
    return float("nan")


per_rule = {}
for f in sorted((res / "benchmarks").rglob("*.tsv")):
    rule = f.relative_to(res / "benchmarks").parts[0].removesuffix(".tsv")
    per_rule[rule] = per_rule.get(rule, 0.0) + float(f.read_text().splitlines()[1].split()[0])

tables = [pd.read_parquet(res / "tables" / f"{t}.parquet") for t in ("table1", "table2", "table4")]


def lowest_10_joined(exp: str) -> int:
    land = res / "landscapes" / exp
    return lowest_joined(pd.read_parquet(land / "minima.parquet"), pd.read_parquet(land / "ts.parquet"))


rows = []
for r in pd.concat(tables).itertuples():
    rows.append({
        "landscape": r.experiment, "quenches": int(r.quenches), "acceptance": float(r.acceptance),
        "returns": float(r.returns), "classes": int(r.min_sym), "coverage": float(r.coverage),
        "chao": [float(r.chao), float(r.chao_low), float(r.chao_high)], "connected": int(r.connected),
        "lowest_10_joined": lowest_10_joined(r.experiment),
        "funnel": float(r.funnel), "ts_classes": int(r.ts_sym), "ts_coverage": float(r.ts_coverage),
        "draws": int(getattr(r, "draws", 1)), "basinhopping_s": job_seconds("basinhopping", r.experiment),
        "connect_s": job_seconds("connect", r.experiment),
    })
claims = pd.read_parquet(res / "tables" / "claims.parquet")
verdicts = {k: int(v) for k, v in claims["verdict"].value_counts().items()}

out = {"commit": commit, "command": "snakemake --cores 2 (fresh clone, README's first command)",
       "job_seconds_per_rule": {k: round(v, 1) for k, v in sorted(per_rule.items(), key=lambda kv: -kv[1])},
       "job_seconds_total": round(sum(per_rule.values()), 1), "landscapes": rows, "claims": verdicts}
if times:
    start, installed, end = times
    out.update(install_s=installed - start, snakemake_s=end - installed, total_s=end - start)
write("default_run", out)

if times:
    print(f"Fresh clone at {commit}: {out['total_s'] // 60} min {out['total_s'] % 60} s in all, of which "
          f"{out['snakemake_s'] // 60} min {out['snakemake_s'] % 60} s Snakemake after installing.\n")
print("| rule | job seconds |\n|---|---|")
for k, v in out["job_seconds_per_rule"].items():
    print(f"| {k} | {v:,.0f} |")
print(f"| all | {out['job_seconds_total']:,.0f} |\n")
print("| landscape | quenches | acceptance | returns | classes | coverage | Chao2 (95 %) | connected | lowest 10 "
      "joined | funnel | TS classes | TS coverage | draws | basin-hopping s | connect s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    c = r["chao"]
    print(f"| {r['landscape']} | {r['quenches']} | {r['acceptance']:.2f} | {r['returns']:.2f} | {r['classes']} "
          f"| {r['coverage']:.2f} | {c[0]:.0f} ({c[1]:.0f}–{c[2]:.0f}) | {r['connected']} of {r['classes']} "
          f"| {r['lowest_10_joined']} | {r['funnel']:.2f} | {r['ts_classes']} | {r['ts_coverage']:.2f} | {r['draws']} "
          f"| {r['basinhopping_s']:.0f} | {r['connect_s']:.0f} |")
print("\nclaims on the run:", json.dumps(verdicts))
