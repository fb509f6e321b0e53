"""One function per workflow step: read artefacts, call the science, write artefacts.

Each function takes plain settings and paths; the Snakemake rules call them through ``cli``.
The torch-based modules are imported inside the steps that need them: the light steps (data
splits, exports, graphs, tables, figures) then start in about a second instead of four.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import experiments
from .artefacts import ArtefactError, read_parquet, require_columns, write_parquet
from .config import Connect, Experiment, Minimiser, Search
from .database import Database
from .experiments import locality_masks
from .layout import free_mask
from .symmetry import NetworkSymmetry

log = logging.getLogger(__name__)

MINIMA_COLUMNS = ["id", "loss", "params", "rms_grad", "min_eig", "n_neg_eig", "sym_class", "found_at_step"]
TS_COLUMNS = ["id", "loss", "params", "min1", "min2", "neg_eig", "n_neg_eig", "rms_grad", "degenerate", "sym_class"]


def experiment_from_dict(d: dict) -> Experiment:
    d = dict(d)
    d["hidden"] = tuple(d["hidden"])
    d["features"] = tuple(d["features"])
    # a stage that does not use a section is not given it (it stays None)
    d["search"] = Search(**d["search"]) if d.get("search") else None
    d["connect"] = Connect(**d["connect"]) if d.get("connect") else None
    if d.get("draw_search"):
        d["draw_search"] = Search(**d["draw_search"])
    return Experiment(**d)


# -- data ---------------------------------------------------------------------------------------
def ljat3_dataset(name: str, L: float, ljat3_cfg: dict, seed: int, device: str, output: str) -> dict:
    """Generate, label and write one LJAT3 data set (docs/methods.md §2)."""
    from . import ljat3
    from .optimize import LBFGSSettings
    from .potentials import resolve_device

    s = ljat3.GeneratorSettings(
        L=float(L), n_starts=int(ljat3_cfg.get("n_starts", 200_000)), seed=int(seed),
        Z=float(ljat3_cfg.get("Z", ljat3.Z_DEFAULT)), labelling=ljat3_cfg.get("labelling", "lbfgs"),
        minimiser=LBFGSSettings(**asdict(Minimiser(**(ljat3_cfg.get("minimiser") or {})))),
    )
    columns, summary = ljat3.generate(s, device=str(resolve_device(device)))
    log.info("%s: %s", name, summary)
    write_parquet(output, pd.DataFrame(columns), {"dataset": name, "generator": s.metadata(), "summary": summary})
    return summary


def _source(exp: Experiment, dataset: dict, source: str | None) -> tuple[tuple, dict, tuple]:
    """(source arrays for ``experiments.build``, their metadata, feature names) of ``exp``."""
    if exp.kind == "ljat3":
        src, meta = experiments.ljat3_source(source, exp.features)
        return src, meta, exp.features
    if exp.kind == "mnist":
        src, meta = experiments.mnist_source(dataset)
        return src, meta, ()
    src, meta = experiments.load_table(dataset)
    return src, meta, tuple(dataset["features"])


def experiment_data(exp: Experiment, dataset: dict, source: str | None, out_train: str, out_test: str) -> dict:
    """Training and testing Parquet of one experiment (docs/methods.md §3-§5)."""
    src, src_meta, names = _source(exp, dataset, source)
    train, test, summary = experiments.build(exp, src, names)
    meta = {"experiment": exp.as_dict(), "source": src_meta, "summary": summary}
    write_parquet(out_train, train, meta)
    write_parquet(out_test, test, meta)
    log.info("%s: %s", exp.id, {k: v for k, v in summary.items() if k != "masks"})
    return summary


def load_xy(path: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    df, _ = read_parquet(path)
    require_columns(df, ["x", "label"], path)
    return np.stack(df["x"].to_numpy()), df["label"].to_numpy(np.int64), df


def free_of(exp: Experiment) -> np.ndarray:
    return free_mask(exp.sizes, locality_masks(exp.sizes, exp.locality, exp.tie_break))


def build_potential(exp: Experiment, train_path: str, device):
    """The ``potentials.MLPLoss`` of ``exp`` on its training data."""
    from .potentials import MLPLoss

    X, y, _ = load_xy(train_path)
    return MLPLoss(exp.sizes, X, y, exp.lam, free_of(exp), exp.regularise_biases, device)


# -- landscapes -------------------------------------------------------------------------------
def _open_db(path, settings, exp, pot) -> Database:
    return Database(path, settings, NetworkSymmetry(exp.sizes, pot.free), exp.search.energy_tol, exp.search.distance_tol)


def _minima_table(db: Database, pot) -> pd.DataFrame:
    df = db.minima_frame()
    df["params"] = [pot.to_full(p) for p in df["params"]]
    return df[MINIMA_COLUMNS]


def _ts_table(db: Database, pot) -> pd.DataFrame:
    df = db.ts_frame()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(TS_COLUMNS, [
            "int64", "float64", "object", "int64", "int64", "float64", "int64", "float64", "bool", "int64"])})
    df["params"] = [pot.to_full(p) for p in df["params"]]
    return df[TS_COLUMNS]


def _landscape_meta(exp: Experiment, pot, stats: dict) -> dict:
    return {"experiment": exp.as_dict(), "free_mask": pot.free.astype(int).tolist(),
            "n_free": pot.P, "stats": {k: v for k, v in stats.items() if k != "seconds"}}


def sample_minima(exp: Experiment, train: str, db_path: str, output: str, quenches: str, device: str) -> dict:
    """Basin-hopping into the database at ``db_path``; export the verified minima (``output``) and
    every quench (``quenches``: chain, step, minimum id or -1, accepted)."""
    from . import basinhopping
    from .potentials import resolve_device

    dev = resolve_device(device)
    pot = build_potential(exp, train, dev)
    identity = {k: v for k, v in exp.as_dict().items() if k != "connect"}  # a new pathway budget keeps the minima
    settings = {"stage": "basinhopping", "experiment": identity}
    db = _open_db(db_path, settings, exp, pot)
    stats = basinhopping.run(pot, db, exp.search, exp.seed, dev)
    table, runs = _minima_table(db, pot), db.quenches_frame()
    db.close()
    log.info("%s: %d minima (%d symmetry-distinct), lowest loss %.10f, %.1f s", exp.id, len(table),
             table["sym_class"].nunique(), table["loss"].min(), stats["seconds"])
    meta = {**_landscape_meta(exp, pot, stats), "experiment": identity}
    write_parquet(quenches, runs, meta)
    write_parquet(output, table, meta)
    return stats


def find_pathways(exp: Experiment, train: str, bh_minima: str, db_path: str, out_minima: str, out_ts: str,
                  device: str) -> dict:
    """Transition states connecting the basin-hopping minima; export minima and TS."""
    from . import connect
    from .potentials import resolve_device

    dev = resolve_device(device)
    pot = build_potential(exp, train, dev)
    start, _ = read_parquet(bh_minima)
    require_columns(start, MINIMA_COLUMNS, bh_minima)
    digest = hashlib.sha256(np.stack(start["params"].to_numpy()).tobytes()).hexdigest()[:16]
    settings = {"stage": "pathways", "experiment": exp.as_dict(), "start_minima": digest}
    db = _open_db(db_path, settings, exp, pot)
    if not db.minima.ids:
        for r in start.itertuples():
            db.add_minimum(r.loss, pot.to_free(r.params), r.rms_grad, r.min_eig, r.n_neg_eig, r.found_at_step)
        db.commit()
    stats = connect.run(pot, db, exp.connect, exp.search) if exp.transition_states else {"seconds": 0.0}
    minima, ts = _minima_table(db, pot), _ts_table(db, pot)
    db.close()
    meta = _landscape_meta(exp, pot, stats)
    write_parquet(out_minima, minima, meta)
    write_parquet(out_ts, ts, meta)
    return stats


def independent_draws(exp: Experiment, dataset: dict, source: str | None, db_dir: str, output: str, auc: dict,
                      device: str) -> None:
    """The later draws of ``exp`` (1 .. ``exp.draws`` - 1), one row each: its own training set and
    mislabelling (``Experiment.draw_seed``, shared with the other experiments on the data set),
    basin-hopping with the budget ``exp.draw_search`` into ``{db_dir}/draw{k}.sqlite`` (resumable),
    and the values of the lowest minimum it found (``tables.gmin_values``), with how many quenches
    and classes that rests on (docs/methods.md §9)."""
    from dataclasses import replace

    from . import basinhopping
    from .config import derive_seed
    from .metrics import minimum_metrics
    from .potentials import MLPLoss, resolve_device
    from .tables import gmin_values

    dev = resolve_device(device)
    src, _, names = _source(exp, dataset, source)
    rows = []
    for k in range(1, exp.draws):
        e = replace(exp, data_seed=exp.draw_seed(k), seed=derive_seed(exp.seed, f"draw{k}"), search=exp.draw_search,
                    draws=1, draw_search=None)
        train, test, summary = experiments.build(e, src, names)
        X, y = np.stack(train["x"].to_numpy()), train["label"].to_numpy(np.int64)
        pot = MLPLoss(e.sizes, X, y, e.lam, free_of(e), e.regularise_biases, dev)
        db = _open_db(Path(db_dir) / f"draw{k}.sqlite", {"stage": "draw", "experiment": e.as_dict()}, e, pot)
        stats = basinhopping.run(pot, db, e.search, e.seed, dev)
        best = np.asarray(db.minima.x[int(np.argmin(db.minima.loss))])[None]  # [1, P] free layout
        cov = db.quench_coverage()
        db.close()
        cpu = pot if dev.type == "cpu" else MLPLoss(e.sizes, X, y, e.lam, free_of(e), e.regularise_biases, resolve_device("cpu"))
        values = gmin_values(minimum_metrics(cpu, best, train, test, e.kind, auc))
        rows.append({"draw": k, "data_seed": e.data_seed, "n_mislabelled": summary["n_mislabelled"], "quenches": cov.n,
                     "classes": cov.classes, "coverage": cov.coverage, "temperature": stats.get("temperature"), **values})
        log.info("%s draw %d: %s", exp.id, k, rows[-1])
    write_parquet(output, pd.DataFrame(rows), {"experiment": exp.as_dict()})


def pathsample_export(minima_path: str, ts_path: str, outdir: str) -> None:
    """PATHSAMPLE's ``min.data`` and ``ts.data`` (text; log-frequency products 0, point-group order 1,
    unit moments of inertia) and ``points.min``/``points.ts`` (unformatted direct-access records:
    one little-endian float64 parameter vector, full layout, per stationary point)."""
    from .artefacts import atomic_path, write_text

    minima, _ = read_parquet(minima_path)
    ts, _ = read_parquet(ts_path)
    out = Path(outdir)
    ts_ok = ts[~ts["degenerate"].astype(bool)] if len(ts) else ts
    write_text(out / "min.data", "".join(f"{e:.12f} 0.0 1 1.0 1.0 1.0\n" for e in minima["loss"]))
    write_text(out / "ts.data", "".join(f"{r.loss:.12f} 0.0 1 {r.min1} {r.min2} 1.0 1.0 1.0\n" for r in ts_ok.itertuples()))
    for name, frame in (("points.min", minima), ("points.ts", ts_ok)):
        with atomic_path(out / name) as tmp:
            tmp.write_bytes(b"".join(np.asarray(p, "<f8").tobytes() for p in frame["params"]))


# -- analysis ---------------------------------------------------------------------------------
def experiment_metrics(exp: Experiment, train: str, test: str, minima: str, output: str, auc: dict) -> None:
    """Losses and AUCs of every stored minimum (row i of the output = row i of ``minima``). They are
    evaluated once per symmetry class, on its representative, and copied to its other members:
    permutation and sign images of a network compute the same function (docs/methods.md §7)."""
    from .metrics import minimum_metrics
    from .potentials import resolve_device

    pot = build_potential(exp, train, resolve_device("cpu"))
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


def disconnectivity_tree(minima: str, ts: str, output: str, n_levels: int = 25) -> None:
    """Disconnectivity-graph nodes of one landscape. Its leaves are symmetry classes (permutation
    and sign images of one minimum are the same minimum, as PATHSAMPLE merges isomers), joined by
    the transition states between two different classes; ``minimum``/``lowest`` give the row of
    the class representative in ``minima``."""
    from .disconnectivity import class_graph, tree

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
    from .tables import gmin_values, quench_coverage

    out = {}
    for e, d in data.items():
        first = {**gmin_values(d["metrics"]), "quenches": quench_coverage(d["minima"], d["quenches"])["quenches"]}
        later = read_parquet(inputs[e]["draws"])[0].to_dict("records") if "draws" in inputs[e] else []
        out[e] = [first, *later]
    return out


def make_tables(tables: dict, inputs: dict, outdir: str) -> None:
    """Every table of ``tables`` ({name: {title, kind, reference, experiments}}) as Parquet and
    Markdown, and ``comparison.md`` with the published values beside ours."""
    from .artefacts import write_text
    from .tables import COVERAGE_COLUMNS, comparison, draw_columns, landscape_row, markdown, reference_values

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


def make_claims(inputs: dict, outdir: str) -> None:
    """``claims.md`` and ``claims.parquet``: every qualitative finding of the paper checked on our
    landscapes and their independent draws (``inputs`` {id: files}, those of the run) and on the
    published tables, with three-valued verdicts (``claims``)."""
    from .artefacts import write_text
    from .claims import CONTRADICTED, HOLDS, UNDECIDED, Evidence, claims_table, paper_rows
    from .tables import landscape_row, markdown, reference_values

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


def make_figure(spec: dict, inputs: dict, output: str) -> None:
    """One figure: ``spec`` = {type: disconnectivity|boxplot, title, colour, experiments, and for
    graphs colour_scale: panel|shared, lowest: N (only the lowest N symmetry classes)}. Panel
    titles give how many classes are connected and how complete each sample is (quenches n,
    coverage, Chao2)."""
    from . import figures
    from .tables import class_rows, quench_coverage, sample_text

    if spec["type"] == "boxplot":
        groups = []
        for exp_id in spec["experiments"]:
            metrics, _ = read_parquet(inputs[exp_id]["metrics"])
            minima, meta = read_parquet(inputs[exp_id]["minima"])
            per_class = metrics.iloc[class_rows(minima)]
            groups.append((f"{meta['experiment']['error']:g}\nn={len(per_class)}", per_class))
        figures.boxplot_figure(groups, spec.get("title", ""), output)
        return
    from .disconnectivity import prune

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
