"""The configuration's types: settings of each step and of an experiment, as frozen dataclasses,
and the resolved ``Config``. Every value is set in config.yaml (see ``config.load``); none has a
default here, so a configuration that lacks one fails naming it."""

from __future__ import annotations

import copy
import zlib
from dataclasses import asdict, dataclass, field, fields, replace


class ConfigError(ValueError):
    """A bad configuration value; the message names the key."""


# The settings below have no defaults here: config.yaml is where each one is set (and explained),
# and a configuration that lacks one fails naming it (``_dataclass_from``).
@dataclass(frozen=True)
class Minimiser:
    """The GMIN-style L-BFGS that labels LJAT3 starts (``ljat3.minimiser``)."""

    memory: int
    max_step: float
    max_rise: float
    dguess: float
    gtol: float
    max_iter: int


@dataclass(frozen=True)
class Search:
    """Basin-hopping budget and tolerances for one experiment."""

    chains: int
    steps: int
    temperature: float | str  # Metropolis temperature (loss units), or auto (basinhopping.calibrate_temperature)
    step_size: float
    adapt_step: bool
    min_step_size: float  # bounds of the adapted step (per parameter, uniform in +-step)
    max_step_size: float
    target_acceptance: float  # of steps reaching another minimum (temperature auto follows it)
    target_returns: float  # of steps quenching back to the chain's minimum (the step size follows it)
    init_scale: float
    memory: int
    max_step: float
    precondition: bool  # L-BFGS metric from the inputs for first-layer weights (potentials.input_metric)
    quench_gtol: float
    tight_gtol: float
    max_iter: int
    energy_tol: float
    distance_tol: float
    coverage: float | None  # stop when the coverage of classes (chains as units) reaches this ...
    min_quenches: int  # ... after at least this many quenches reached a minimum
    max_seconds: float | None


@dataclass(frozen=True)
class Connect:
    """Pathway search (DNEB + hybrid eigenvector-following + Dijkstra) budget and tolerances."""

    max_pairs: int
    attempts_per_pair: int
    target_cycles: int  # Dijkstra cycles that may aim at one class before it gets single-ended searches
    grow_pairs: int
    grow_lowest: int
    ts_coverage: float | None  # the grow phase stops when the coverage of TS classes reaches this
    connect_lowest: int | None  # connect only the lowest this many classes (null: all)
    descend_lowest: int | None  # before each Dijkstra cycle, bands from the global minimum to the lowest this many
    images_per_unit: float
    min_images: int
    max_images: int
    more_images_on_repeats: bool  # the k-th attempt at a pair uses k times the images
    spring: float
    neb_iter: int
    neb_rms: float
    ts_gtol: float
    hef_iter: int
    tangent_steps: int
    max_uphill_step: float
    max_tangent_step: float
    push_off: float
    path_step: float  # push-offs: arc length of a local-quadratic step along the steepest-descent path
    convex_path_step: float  # ... and at most this where the Hessian is positive definite
    newton_radius: float  # ... which ends where the Newton step is shorter than this
    descent_step: float  # above EXACT_LIMIT parameters: L-BFGS steps at most this long ...
    past_peak: float  # ... until the RMS gradient falls below this share of its peak
    max_seconds: float | None


@dataclass(frozen=True)
class Experiment:
    id: str
    data: str
    kind: str  # ljat3 | mnist | table
    error: float
    hidden: tuple[int, ...]
    n_train: int
    lam: float
    inputs: int
    outputs: int
    features: tuple[str, ...]
    locality: int | None
    tie_break: str
    regularise_biases: bool
    n_test: int | None
    seed: int  # basin-hopping's
    transition_states: bool
    search: Search
    connect: Connect
    data_seed: int = 0  # seed of the training set and its mislabelling: shared by the data set's experiments
    draws: int = 1  # independent draws of the training set and mislabelling (the first is this landscape)
    draw_search: Search | None = None  # basin-hopping budget of each later draw (its global minimum only)

    def draw_seed(self, k: int) -> int:
        """Data seed of draw ``k`` (0: ``data_seed``); equal for experiments on the same data set."""
        if k == 0:
            return self.data_seed
        import numpy as np

        return int(np.random.SeedSequence([self.data_seed, k]).generate_state(1, np.uint64)[0] >> 1)

    @property
    def data_kind(self):
        """The ``data.kinds.DataKind`` of this experiment's data set."""
        from losslandscapes.data.kinds import KINDS

        return KINDS[self.kind]

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *self.hidden, self.outputs)

    def as_dict(self) -> dict:
        return asdict(self)

    def for_step(self, step: str) -> "Experiment":
        """This experiment without the settings that ``step`` does not use (``STEP_SETTINGS``):
        what the step records in its outputs and what, changed, makes the workflow rerun it (a new
        pathway budget keeps the minima)."""
        keep = STEP_SETTINGS[step]
        return replace(self, search=self.search if "search" in keep else None,
                       connect=self.connect if "connect" in keep else None,
                       draws=self.draws if "draws" in keep else 1,
                       draw_search=self.draw_search if "draws" in keep else None)


STEP_SETTINGS = {  # the sections of an experiment that each step uses
    "experiment": (),
    "basinhopping": ("search",),
    "connect": ("search", "connect"),
    "draws": ("search", "draws"),
    "metrics": ("search", "connect"),  # it reads the minima that both made: a new budget reruns it
}


@dataclass(frozen=True)
class Config:
    preset: str
    seed: int
    device: str
    threads: int
    datasets: dict
    ljat3: dict
    experiments: tuple[Experiment, ...]
    auc: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    levels: int = 25
    user_ids: tuple[str, ...] = ()  # experiments from a user's config file (config.merge_user)

    @property
    def paper_run(self) -> bool:
        """Whether any of the paper's experiments runs (then the paper's claims are checked)."""
        return any(i not in self.user_ids for i in self.ids())

    def experiment(self, exp_id: str) -> Experiment:
        for e in self.experiments:
            if e.id == exp_id:
                return e
        raise ConfigError(f"experiments: no experiment with id {exp_id!r}")

    def ids(self, kind: str | None = None, with_ts: bool | None = None) -> list[str]:
        return [
            e.id
            for e in self.experiments
            if (kind is None or e.kind == kind) and (with_ts is None or e.transition_states == with_ts)
        ]

    def present(self, specs: dict) -> dict:
        """``tables`` or ``figures`` with their experiment lists cut to the configured experiments."""
        ids = set(self.ids())
        out = {}
        for name, spec in specs.items():
            exps = [e for e in spec["experiments"] if e in ids]
            if exps:
                out[name] = {**spec, "experiments": exps}
        return out

    def ljat3_datasets(self) -> list[str]:
        """The generated (LJAT3) data sets that the experiments use."""
        from losslandscapes.data.kinds import KINDS

        used = {e.data for e in self.experiments}
        return [n for n, d in self.datasets.items() if KINDS[d["kind"]].generated and n in used]

    def step_settings(self, step: str, name: str | None = None) -> dict:
        """Everything workflow step ``step`` reads from this configuration for ``name`` (an
        experiment id, a data set or a figure; none for the steps over all experiments). Its
        ``digest`` is the rule's rerun trigger, and the step checks that it was given the settings
        the workflow planned (``cli --expect``)."""
        if step == "ljat3":
            return {"L": self.datasets[name]["L"], "ljat3": self.ljat3, "seed": self.seed, "device": self.device}
        if step in STEP_SETTINGS:
            exp = self.experiment(name)
            out = {"experiment": exp.for_step(step).as_dict()}
            if step in ("experiment", "draws"):
                out["dataset"] = self.datasets[exp.data]
            if step in ("basinhopping", "connect", "draws"):
                out["device"] = self.device
            if step in ("draws", "metrics"):
                out["auc"] = self.auc
            return out
        if step == "disconnectivity":
            return {"levels": self.levels}
        if step == "tables":
            return {"tables": self.present(self.tables)}
        if step == "claims":
            return {"experiments": self.ids()}
        if step == "figure":
            return {"figure": self.present(self.figures)[name]}
        return {}


def digest(settings: dict) -> str:
    """A short, stable digest (16 hex digits) of a mapping of settings."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def derive_seed(seed: int, name: str) -> int:
    """A stable 63-bit seed for ``name`` (crc32 of the name mixed with the global seed)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1, np.uint64)[0] >> 1)


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _dataclass_from(cls, values: dict, where: str):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    missing = sorted(names - set(values))
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing} (the repository's config.yaml sets every one)")
    return cls(**values)


def _need(cfg: dict, key: str):
    """``cfg[key]``, or a ``ConfigError`` naming the missing section."""
    if key not in cfg or cfg[key] is None:
        raise ConfigError(f"{key}: missing (the repository's config.yaml sets it; a file of your own adds to it)")
    return cfg[key]
