"""Loading the workflow configuration: YAML, a user's own files, presets, semantic checks.

``resolve(raw)`` turns the (schema-validated) YAML mapping into a ``Config``. Every error is a
``ConfigError`` whose message starts with the offending key, e.g. ``experiments[3] (D1-e200).error``.
Imports nothing heavy: the Snakefile calls it at parse time, before any job runs.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict
from pathlib import Path

import yaml

from .settings import (Config, ConfigError, Connect, Experiment, Minimiser, Search, _dataclass_from, _need,
                       deep_merge, derive_seed)

BY_NAME = ("datasets", "tables", "figures", "presets")  # sections a user file merges entry by entry

log = logging.getLogger(__name__)


def load_yaml(path: str | Path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def merge_user(base: dict, user: dict, source: str) -> dict:
    """One user config file (``source``, its mapping ``user``) merged over ``base``: data sets,
    tables, figures and presets entry by entry and experiments by id (an entry of the same name
    replaces the base's, said in the log), any other section key by key. The user's experiments
    are what the run selects (``apply_preset``) unless ``paper_experiments: true``; their ids are
    kept in ``_user_ids`` and their file in ``_origin``."""
    if not isinstance(user, dict):
        raise ConfigError(f"{source}: expected a mapping of configuration keys, got {type(user).__name__}")
    out = copy.deepcopy(base)
    for key, value in user.items():
        if key in BY_NAME and isinstance(value, dict):
            section = out.setdefault(key, {}) or {}
            for name in value:
                if name in section:
                    log.warning("%s: %s.%s replaces the entry of that name", source, key, name)
            out[key] = {**section, **copy.deepcopy(value)}
        elif key == "experiments" and isinstance(value, list):
            exps = list(out.get("experiments") or [])
            index = {e.get("id"): i for i, e in enumerate(exps)}
            for e in value:
                eid = e.get("id") if isinstance(e, dict) else None
                if eid in index:
                    log.warning("%s: experiment %s replaces the experiment of that id", source, eid)
                    exps[index[eid]] = copy.deepcopy(e)
                else:
                    index[eid] = len(exps)
                    exps.append(copy.deepcopy(e))
                out.setdefault("_origin", {})[eid] = source
                out["_user_ids"] = [*out.get("_user_ids", []), eid]
            out["experiments"] = exps
        else:
            out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else copy.deepcopy(value)
    return out


def with_user_files(paper: str | Path, user_files, overrides: dict | None = None,
                    schema_path: str | Path | None = None) -> dict:
    """The paper's configuration file ``paper``, each of ``user_files`` merged over it
    (``merge_user``; each checked on its own against the schema first, errors naming the file),
    then ``overrides`` (Snakemake's ``--config``) key by key. A user file that is ``paper`` itself
    adds nothing."""
    cfg = load_yaml(paper)
    for f in user_files:
        if Path(f).resolve() == Path(paper).resolve():
            continue
        try:
            user = load_yaml(f) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{f}: cannot read it as YAML: {err}") from None
        if schema_path is not None:
            try:
                schema_errors(user, schema_path, partial=True)
            except ConfigError as err:
                raise ConfigError(f"{f}: {err}") from None
        cfg = merge_user(cfg, user, str(f))
    return deep_merge(cfg, dict(overrides or {}))


def _user_defaults(cfg: dict) -> dict:
    """Tables and figures for the user's experiments when the user declared none: a table, the
    disconnectivity graphs (coloured by testing AUC) of those with transition states, and AUC
    box plots."""
    from losslandscapes.data.kinds import KINDS  # it imports this package's settings

    ids = cfg["_user_ids"]
    declared = {e for key in ("tables", "figures") for spec in (cfg.get(key) or {}).values()
                for e in spec.get("experiments", []) if e in ids}
    if declared:
        return cfg
    exps = {e["id"]: e for e in cfg["experiments"] if e.get("id") in ids}
    kind = {i: ((cfg.get("datasets") or {}).get(e.get("data")) or {}).get("kind") for i, e in exps.items()}
    with_ts = [i for i, e in exps.items() if e.get("transition_states", getattr(KINDS.get(kind[i]), "transition_states", True))]
    out = copy.deepcopy(cfg)
    out.setdefault("tables", {})["yours"] = {"title": "Your experiments", "experiments": list(ids),
                                             "kind": "landscape" if with_ts == list(ids) else "minima"}
    figures = out.setdefault("figures", {})
    if with_ts:
        figures["yours_disconnectivity"] = {"type": "disconnectivity", "colour": "test_auc", "experiments": with_ts,
                                            "title": "Your experiments, coloured by testing AUC"}
    figures["yours_auc"] = {"type": "boxplot", "experiments": list(ids), "title": "Your experiments: AUC of the minima"}
    return out


def apply_preset(raw: dict) -> dict:
    """Merge ``presets[preset]`` over the rest of the mapping; drop the presets table."""
    presets = raw.get("presets", {}) or {}
    name = _need(raw, "preset")
    if name not in presets:
        raise ConfigError(f"preset: unknown preset {name!r}; defined presets: {sorted(presets)}")
    base = {k: v for k, v in (_user_defaults(raw) if raw.get("_user_ids") else raw).items() if k != "presets"}
    over = dict(presets[name] or {})
    only = over.pop("only", None)
    per_exp = over.pop("experiment_overrides", {}) or {}
    every = over.pop("every_experiment", {}) or {}
    merged = deep_merge(base, over)
    exps = merged.get("experiments") or []
    known_all = {e.get("id") for e in exps}
    for key, ids in (("only", only or []), ("experiment_overrides", per_exp)):
        missing = [i for i in ids if i not in known_all]
        if missing:
            raise ConfigError(f"presets.{name}.{key}: unknown experiment id(s) {missing}")
    user = raw.get("_user_ids")
    if user and not raw.get("paper_experiments", False):  # a user's file runs its own experiments
        exps = [e for e in exps if e.get("id") in user]
    elif only is not None:
        exps = [e for e in exps if e.get("id") in only or e.get("id") in (user or [])]
    exps = [deep_merge(e, every) for e in exps]
    for exp_id, ov in per_exp.items():
        hit = [i for i, e in enumerate(exps) if e.get("id") == exp_id]
        if hit:  # an override of an experiment this run does not select is no error
            exps[hit[0]] = deep_merge(exps[hit[0]], ov)
    merged["experiments"] = exps
    merged["_all_ids"] = sorted(known_all)
    merged["preset"] = name
    return merged


def schema_errors(cfg: dict, schema_path: str | Path, partial: bool = False) -> None:
    """Check ``cfg`` (without its private ``_`` keys) against the JSON schema; ``ConfigError``
    naming the first offending key. ``partial``: no top-level key is required (a user file)."""
    import jsonschema

    schema = load_yaml(schema_path)
    if partial:
        schema.pop("required", None)
    cfg = {k: v for k, v in cfg.items() if not str(k).startswith("_")}
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        key = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"{key}: {e.message}")


def resolve(raw: dict, schema_path: str | Path | None = None) -> Config:
    """Validated ``Config`` from the raw mapping; raises ``ConfigError`` naming the key.

    With ``schema_path`` the raw mapping and the mapping after the preset are both checked
    against the JSON schema first.
    """
    from losslandscapes.data.kinds import kind as kind_of  # it imports this package's settings

    if schema_path is not None:
        schema_errors(raw, schema_path)
    cfg = apply_preset(raw)
    if schema_path is not None:
        schema_errors(cfg, schema_path)
    seed = _need(cfg, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: expected a non-negative integer, got {seed!r}")
    device = _need(cfg, "device")
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device: expected auto, cpu or cuda, got {device!r}")
    datasets = cfg.get("datasets") or {}
    ljat3 = _need(cfg, "ljat3")
    n_starts = ljat3.get("n_starts")
    if not isinstance(n_starts, int) or n_starts < 2 or n_starts % 2:
        raise ConfigError(f"ljat3.n_starts: expected an even integer >= 2, got {n_starts!r}")
    if ljat3.get("labelling") not in ("lbfgs", "gradient_flow"):
        raise ConfigError(f"ljat3.labelling: expected lbfgs or gradient_flow, got {ljat3.get('labelling')!r}")
    Z = ljat3.get("Z")
    if isinstance(Z, bool) or not isinstance(Z, (int, float)) or not math.isfinite(Z):
        raise ConfigError(f"ljat3.Z: expected a number (the Axilrod-Teller strength), got {Z!r}")
    _dataclass_from(Minimiser, ljat3.get("minimiser") or {}, "ljat3.minimiser")
    for name, ds in datasets.items():
        if problem := kind_of(ds.get("kind"), f"datasets.{name}.kind").check(name, ds):
            raise ConfigError(problem)
    exps_raw = cfg.get("experiments") or []
    if not exps_raw:
        raise ConfigError("experiments: the list is empty; define at least one experiment")
    search_default, connect_default = _need(cfg, "search"), _need(cfg, "connect")
    _dataclass_from(Search, search_default, "search")  # complete before any experiment adds to it
    _dataclass_from(Connect, connect_default, "connect")
    later_draws = (cfg.get("later_draws") or {}).get("search") or {}
    seen: set[str] = set()
    exps = []
    for i, e in enumerate(exps_raw):
        where = f"experiments[{i}] ({e.get('id', '?')})"
        if e.get("id") in (cfg.get("_origin") or {}):
            where = f"{cfg['_origin'][e['id']]}: experiment {e['id']}"
        eid = e.get("id")
        if not isinstance(eid, str) or not eid or "/" in eid:
            raise ConfigError(f"{where}.id: expected a non-empty string without '/', got {eid!r}")
        if eid in seen:
            raise ConfigError(f"{where}.id: duplicate experiment id {eid!r}")
        seen.add(eid)
        data = e.get("data")
        if data not in datasets:
            raise ConfigError(f"{where}.data: unknown data set {data!r}; defined: {sorted(datasets)}")
        kind = datasets[data]["kind"]
        feats, n_in, n_out, available = kind_of(kind).shape(datasets[data], e, where, ljat3)
        for key, val in (("inputs", n_in), ("outputs", n_out)):
            if key in e and e[key] != val:
                raise ConfigError(f"{where}.{key}: data set {data} has {val} {key}, experiment says {e[key]}")
        error = e.get("error", 0)
        if not isinstance(error, (int, float)) or not 0 <= error <= 100:
            raise ConfigError(f"{where}.error: expected a percentage in [0, 100], got {error!r}")
        hidden = e.get("hidden")
        if not isinstance(hidden, list) or not hidden or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden
        ):
            raise ConfigError(f"{where}.hidden: expected a list of positive integers, got {hidden!r}")
        n_train = e.get("n_train")
        if not isinstance(n_train, int) or n_train < 2:
            raise ConfigError(f"{where}.n_train: expected an integer >= 2, got {n_train!r}")
        if available is not None and n_train >= available:
            raise ConfigError(f"{where}.n_train: {n_train} training items requested but data set {data} has only {available} for training (and some must be left for testing)")
        lam = e.get("lam", 0.0)
        if not isinstance(lam, (int, float)) or lam < 0 or not math.isfinite(lam):
            raise ConfigError(f"{where}.lam: expected a finite number >= 0, got {lam!r}")
        k = e.get("locality")
        if k is not None:
            if not isinstance(k, int) or k < 1:
                raise ConfigError(f"{where}.locality: expected an integer >= 1 or null, got {k!r}")
            if len(hidden) != 1:
                raise ConfigError(f"{where}.locality: defined for one hidden layer only, got hidden={hidden}")
            if k > max(n_in, n_out):
                raise ConfigError(f"{where}.locality: k={k} exceeds the larger neighbouring layer ({max(n_in, n_out)} nodes)")
        tie = e.get("tie_break", "lowest")
        if tie not in ("lowest", "highest"):
            raise ConfigError(f"{where}.tie_break: expected lowest or highest, got {tie!r}")
        try:
            search = _dataclass_from(Search, deep_merge(search_default, e.get("search") or {}), f"{where}.search")
            draw_search = _dataclass_from(Search, deep_merge(asdict(search), later_draws), "later_draws.search")
            connect = _dataclass_from(Connect, deep_merge(connect_default, e.get("connect") or {}), f"{where}.connect")
        except TypeError as err:
            raise ConfigError(f"{where}: {err}") from None
        if not search.min_step_size <= search.step_size <= search.max_step_size:
            raise ConfigError(f"{where}.search.step_size: expected within min_step_size {search.min_step_size} and "
                              f"max_step_size {search.max_step_size}, got {search.step_size}")
        exps.append(
            Experiment(
                id=eid, data=data, kind=kind, error=float(error), hidden=tuple(hidden), n_train=n_train,
                lam=float(lam), inputs=n_in, outputs=n_out, features=feats, locality=k, tie_break=tie,
                regularise_biases=bool(e.get("regularise_biases", True)), n_test=e.get("n_test"),
                seed=int(e.get("seed", derive_seed(seed, eid))),
                data_seed=derive_seed(seed, f"data/{data}"), draws=int(e.get("draws", 1)),
                draw_search=draw_search if e.get("draws", 1) > 1 else None,
                transition_states=bool(e.get("transition_states", kind_of(kind).transition_states)), search=search, connect=connect,
            )
        )
    return Config(
        preset=cfg["preset"], seed=seed, device=device, threads=int(_need(cfg, "threads")),
        datasets=datasets, ljat3=ljat3, experiments=tuple(exps),
        auc=cfg.get("auc") or {}, tables=_specs(cfg, "tables", seen), figures=_specs(cfg, "figures", seen),
        levels=int(_need(cfg, "figures_levels")), user_ids=tuple(cfg.get("_user_ids", ())),
    )


def _specs(cfg: dict, key: str, known_ids: set) -> dict:
    """``tables`` or ``figures``: every listed experiment id must be defined (before ``only``)."""
    specs = cfg.get(key) or {}
    all_ids = known_ids | set(cfg.get("_all_ids", []))
    for name, spec in specs.items():
        unknown = [e for e in spec.get("experiments", []) if e not in all_ids]
        if unknown:
            raise ConfigError(f"{key}.{name}.experiments: unknown experiment id(s) {unknown}")
    return specs

