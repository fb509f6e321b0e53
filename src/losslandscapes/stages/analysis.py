"""Workflow steps of analysis: per-minimum metrics, disconnectivity graphs, tables, the claims and
the figures (see ``stages.data`` for how steps are written)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from losslandscapes.storage.artefacts import ArtefactError, read_parquet, require_columns, write_parquet
from losslandscapes.config import Experiment

log = logging.getLogger(__name__)


def metrics(exp: Experiment, train: str, test: str, minima: str, output: str, auc: dict) -> None:
    """Losses and AUCs of every stored minimum (row i of the output = row i of ``minima``). They are
    evaluated once per symmetry class, on its representative, and copied to its other members:
    permutation and sign images of a network compute the same function (docs/methods.md §7)."""
    from losslandscapes.analysis.metrics import minimum_metrics
    from losslandscapes.landscape.system import MINIMA_COLUMNS, System

    pot = System.from_training_set(exp, train, "cpu").pot
    tr, _ = read_parquet(train)
    te, _ = read_parquet(test)
    mins, _ = read_parquet(minima)
    require_columns(mins, MINIMA_COLUMNS, minima)
    ids = mins["id"].to_numpy()
    reps, member = np.unique(mins["sym_class"].to_numpy(), return_inverse=True)
    row_of = {int(i): r for r, i in enumerate(ids)}
    if missing := [int(c) for c in reps if int(c) not in row_of]:
        raise ArtefactError(f"{minima}: sym_class {missing[:3]} is not the id of a stored minimum")
    rows = [row_of[int(c)] for c in reps]
    params = pot.to_free(np.stack(mins["params"].to_numpy()[rows])) if len(mins) else np.zeros((0, pot.P))
    df = minimum_metrics(pot, params, tr, te, exp.kind, auc).iloc[member].reset_index(drop=True)
    df.insert(0, "id", ids)
    write_parquet(output, df, {"experiment": exp.id, "auc": auc})


def disconnectivity(minima: str, ts: str, output: str, n_levels: int = 25) -> None:
    """Disconnectivity-graph nodes of one landscape. Its leaves are symmetry classes (permutation
    and sign images of one minimum are the same minimum, as PATHSAMPLE merges isomers), joined by
    the transition states between two different classes; ``minimum``/``lowest`` give the row of
    the class representative in ``minima``."""
    from losslandscapes.analysis.disconnectivity import class_graph, tree

    mins, meta = read_parquet(minima)
    t, _ = read_parquet(ts)
    reps, energy, ts_energy, ts_pairs = class_graph(mins, t)
    nodes = tree(energy, ts_energy, ts_pairs, n_levels)
    for col in ("minimum", "lowest"):
        nodes[col] = np.where(nodes[col] >= 0, reps[nodes[col].clip(0)] - 1, -1)
    write_parquet(output, nodes, {"experiment": meta["experiment"]["id"], "n_levels": n_levels})


def _landscape_inputs(inputs: dict) -> dict:
    out = {}
    for exp_id, paths in inputs.items():
        minima, meta = read_parquet(paths["minima"])
        ts, ts_meta = read_parquet(paths["ts"])
        metrics, _ = read_parquet(paths["metrics"])
        quenches, _ = read_parquet(paths["quenches"])
        ts_cov = (ts_meta.get("stats", {}).get("ts_coverage") or {}).get("coverage", math.nan)
        out[exp_id] = {"exp": meta["experiment"], "minima": minima, "ts": ts, "metrics": metrics, "quenches": quenches,
                       "ts_coverage": ts_cov}
    return out


def _draws(data: dict, inputs: dict) -> dict:
    """{experiment id: [its global minimum's values (``tables.gmin_values``, with ``quenches``)
    per independent draw, the landscape's own first]}, the later ones from ``draws.parquet``."""
    from losslandscapes.analysis.tables import gmin_values, quench_coverage

    out = {}
    for e, d in data.items():
        first = {**gmin_values(d["metrics"]), "quenches": quench_coverage(d["minima"], d["quenches"])["quenches"]}
        later = read_parquet(inputs[e]["draws"])[0].to_dict("records") if "draws" in inputs[e] else []
        out[e] = [first, *later]
    return out


def tables(tables: dict, inputs: dict, outdir: str) -> None:
    """Every table of ``tables`` ({name: {title, kind, reference, experiments}}) as Parquet and
    Markdown, and ``comparison.md`` with the published values beside ours."""
    from losslandscapes.storage.artefacts import write_text
    from losslandscapes.analysis.tables import COVERAGE_COLUMNS, comparison, draw_columns, landscape_row, markdown, reference_values

    data = _landscape_inputs(inputs)
    draws = _draws(data, inputs)
    ref = reference_values()
    out = Path(outdir)
    comp_md = ["# Published values beside ours", "",
               "Paper: Chitturi, Verpoort, Lee, Wales, Mach. Learn.: Sci. Technol. 1 (2020) 023002.",
               "The paper's minima and transition-state counts are counts of symmetry classes (its D2 databases hold",
               "6-26 minima, where almost every quench finds a plainly new one), so they stand beside our class counts",
               "`min_sym` and `ts_sym`; the plain counts `min`/`ts` of the tables are never compared. Means and sds over",
               "minima are over symmetry classes, one value each. Testing loss is the cross-entropy alone. In the tables,",
               "`quenches`, `coverage` and `chao` (Chao2, estimated classes, 95 % interval; both with the chains as units) say how complete",
               "the sample behind each count is, `ts_coverage` the same for transition states, `connected` how many",
               "classes are joined to the global minimum and `funnel` the share of the others that lie in its funnel",
               "(barrier towards it smaller than the height above it).", ""]
    for name, spec in tables.items():
        rows = [{**landscape_row(**data[e]), **draw_columns(draws[e])} for e in spec["experiments"]]
        df = pd.DataFrame(rows)
        write_parquet(out / f"{name}.parquet", df, {"table": name, "spec": spec})
        cols = [c for c in df.columns if c not in ("hidden_layers", "widths", "n_train", "ts_degenerate")]
        if spec.get("kind") == "counts":
            cols = ["experiment", "n_train", "min", "ts", "min_sym", "ts_sym", *COVERAGE_COLUMNS[:3], "ts_coverage"]
        if spec.get("kind") in ("mnist", "minima"):
            cols = [c for c in cols if not c.startswith(("train_gmin", "test_gmin", "ts", "connected", "funnel", "draws", "later_draw"))]
        write_text(out / f"{name}.md", markdown(df[cols], spec.get("title", name)))
        if spec.get("reference") in ref:
            comp = comparison(rows, ref[spec["reference"]], spec.get("kind", "landscape"))
            comp_md.append(markdown(comp, spec.get("title", name)))
    write_text(out / "comparison.md", "\n".join(comp_md))


def claims(inputs: dict, outdir: str) -> None:
    """``claims.md`` and ``claims.parquet``: every qualitative finding of the paper checked on our
    landscapes and their independent draws (``inputs`` {id: files}, those of the run) and on the
    published tables, with three-valued verdicts (``claims``)."""
    from losslandscapes.storage.artefacts import write_text
    from losslandscapes.analysis.claims import CONTRADICTED, HOLDS, UNDECIDED, Evidence, claims_table, paper_rows
    from losslandscapes.analysis.tables import landscape_row, markdown, reference_values

    data = _landscape_inputs(inputs)
    draws = _draws(data, inputs)
    rows = {e: landscape_row(**d) for e, d in data.items()}
    df = claims_table(Evidence(rows, draws), Evidence(paper_rows(reference_values())))
    out = Path(outdir)
    write_parquet(out / "claims.parquet", df, {"experiments": sorted(inputs)})
    n = {v: int((df["verdict"] == v).sum()) for v in (HOLDS, CONTRADICTED, UNDECIDED)}
    text = ["# The paper's findings, checked", "",
            f"Of {len(df)} claims, {n[HOLDS]} hold, {n[CONTRADICTED]} are contradicted and {n[UNDECIDED]} are undecided on this",
            "run's landscapes. Values of the global minimum are compared over independent draws of the training set",
            "(95 % t-interval of the mean paired difference; a single draw decides nothing); counts by the 95 % intervals",
            "of Chao2, the estimated number of symmetry classes (overlapping intervals decide nothing); transition-state",
            "counts only where both searches reached a coverage of 0.9. `paper_verdict` applies the same rules to the",
            "published values as points. The rule of each claim is in docs/methods.md §9.", "",
            markdown(df)]
    write_text(out / "claims.md", "\n".join(text))


def figure(spec: dict, inputs: dict, output: str) -> None:
    """One figure: ``spec`` = {type: disconnectivity|boxplot, title, colour, experiments, and for
    graphs colour_scale: panel|shared, lowest: N (only the lowest N symmetry classes)}. Panel
    titles give how many classes are connected and how complete each sample is (quenches n,
    coverage, Chao2)."""
    from losslandscapes.analysis import figures
    from losslandscapes.analysis.tables import class_rows, quench_coverage, sample_text

    if spec["type"] == "boxplot":
        groups = []
        for exp_id in spec["experiments"]:
            metrics, _ = read_parquet(inputs[exp_id]["metrics"])
            minima, meta = read_parquet(inputs[exp_id]["minima"])
            per_class = metrics.iloc[class_rows(minima)]
            groups.append((f"{meta['experiment']['error']:g}\nn={len(per_class)}", per_class))
        figures.boxplot_figure(groups, spec.get("title", ""), output)
        return
    from losslandscapes.analysis.disconnectivity import prune

    colour, lowest = spec.get("colour", "test_auc"), spec.get("lowest")
    panels = []
    for exp_id in spec["experiments"]:
        nodes, _ = read_parquet(inputs[exp_id]["tree"])
        metrics, _ = read_parquet(inputs[exp_id]["metrics"])
        minima, _ = read_parquet(inputs[exp_id]["minima"])
        reps = class_rows(minima)
        joined = int((nodes["minimum"] >= 0).sum())
        c = quench_coverage(minima, read_parquet(inputs[exp_id]["quenches"])[0])
        what = f"{joined} of {len(reps)} classes connected"
        if lowest:
            low = reps[np.argsort(minima["loss"].to_numpy()[reps], kind="stable")[:lowest]]
            nodes = prune(nodes, low)
            what = f"{int((nodes['minimum'] >= 0).sum())} of the lowest {len(low)} classes connected"
        note = None
        if (nodes["minimum"] >= 0).sum() == 1:
            note = "a single symmetry class" if len(reps) == 1 else "no transition state joins\nthe global minimum yet"
        panels.append({"title": f"{exp_id}: {what}\n{sample_text(c)}", "nodes": nodes, "value": metrics[colour].to_numpy(float),
                       "gmin_loss": float(minima["loss"].min()), "note": note})
    figures.disconnectivity_figure(panels, colour, spec.get("title", ""), output, spec.get("colour_scale") == "shared")
