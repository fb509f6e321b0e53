"""Landscapes run at the `paper` preset's budgets, beside the paper's counts and the plan's
prediction; writes ``benchmarks/results/paper_scale.json`` and prints the Markdown table of
docs/cluster.md.

    python benchmarks/paper_scale.py RESULTS_DIR TIMES PLAN_JSON

RESULTS_DIR: a results folder with ``landscapes/{exp}/`` of each landscape (minima, ts, quenches);
TIMES: lines ``STEP EXP SECONDS`` of each step run by hand (one thread); PLAN_JSON: the output of
``python -m losslandscapes plan --config preset=paper --json``.
"""

import json
import sys
from pathlib import Path

import numpy as np
from common import write

from losslandscapes.analysis.tables import quench_coverage, reference_values
from losslandscapes.storage.artefacts import read_parquet

res, times, plan = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
measured = {(s, e): float(t) for s, e, t in (line.split() for line in times.read_text().splitlines())}
predicted = {(j["rule"], j["exp"]): j for j in plan["jobs"]}
paper = {f"D1-e{r['error']}": r for r in reference_values()["table1_D1"]}
paper.update({f"D2-e{r['error']}": r for r in reference_values()["table2_D2"]})

rows = []
for exp in dict.fromkeys(e for _, e in measured):
    d = res / "landscapes" / exp
    minima, _ = read_parquet(d / "minima.parquet")
    ts, meta = read_parquet(d / "ts.parquet")
    quenches, _ = read_parquet(d / "quenches.parquet")
    good = ts[~ts["degenerate"].astype(bool)]
    sym = minima["sym_class"].to_numpy()
    edges = {tuple(sorted((sym[a - 1], sym[b - 1]))) for a, b in zip(good["min1"], good["min2"]) if sym[a - 1] != sym[b - 1]}
    cov = quench_coverage(minima, quenches)
    stats = meta["stats"]
    rows.append({
        "experiment": exp, "quenches": len(quenches), "coverage": cov["coverage"],
        "chao2": [cov["chao"], cov["chao_low"], cov["chao_high"]], "classes": int(len(np.unique(sym))),
        "minima": len(minima), "ts": len(good), "ts_classes": int(good["sym_class"].nunique()), "class_edges": len(edges),
        "connected": stats["connected_to_gmin"], "pair_attempts": stats["pair_attempts"],
        "ts_coverage": stats["ts_coverage"]["coverage"], "lowest_loss": float(minima["loss"].min()),
        "paper_minima": paper[exp]["min"], "paper_ts": paper[exp]["ts"],
        "seconds": {s: measured[s, exp] for s in ("basinhopping", "connect", "metrics") if (s, exp) in measured},
        "predicted_seconds": {s: predicted[s, exp]["cpu_s"] for s in ("basinhopping", "connect", "metrics")},
        "predicted_quenches": predicted["basinhopping", exp]["quenches"],
        "predicted_pair_attempts": predicted["connect", exp]["pair_attempts"],
    })
write("paper_scale", {"results": str(res), "plan_preset": plan["preset"], "landscapes": rows})

print("| | " + " | ".join(r["experiment"] for r in rows) + " |\n|---|" + "---|" * len(rows))
lines = [
    ("quenches (plan)", lambda r: f"{r['quenches']:,} ({r['predicted_quenches']:,})"),
    ("coverage of classes (chains as units)", lambda r: f"{r['coverage']:.3f}"),
    ("Chao2 (95 %)", lambda r: "{:.0f} ({:.0f}–{:.0f})".format(*r["chao2"])),
    ("distinct minima (classes); paper", lambda r: f"{r['classes']:,}; {r['paper_minima']}"),
    ("transition states (classes); paper", lambda r: f"{r['ts']:,} ({r['ts_classes']:,}); {r['paper_ts']}"),
    ("classes joined to the global minimum", lambda r: f"{r['connected']:,} of {r['classes']:,}"),
    ("pair attempts (plan)", lambda r: f"{r['pair_attempts']:,} ({r['predicted_pair_attempts']:,})"),
    ("coverage of transition-state classes", lambda r: f"{r['ts_coverage']:.3f}"),
    ("basin-hopping CPU-s (plan)", lambda r: f"{r['seconds']['basinhopping']:,.0f} ({r['predicted_seconds']['basinhopping']:,.0f})"),
    ("connect CPU-s (plan)", lambda r: f"{r['seconds']['connect']:,.0f} ({r['predicted_seconds']['connect']:,.0f})"),
    ("metrics CPU-s (plan)", lambda r: f"{r['seconds']['metrics']:,.0f} ({r['predicted_seconds']['metrics']:,.0f})"),
]
for name, fmt in lines:
    print(f"| {name} | " + " | ".join(fmt(r) for r in rows) + " |")
