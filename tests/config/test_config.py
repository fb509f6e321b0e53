"""Bad input is rejected before any job runs, with a message naming the key or file."""

import copy
from pathlib import Path

import pytest

from losslandscapes.config import ConfigError, apply_preset, load_yaml, merge_user, resolve, with_user_files

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
BASE = load_yaml(ROOT / "config.yaml")


def exp_index(raw, exp_id):
    return next(i for i, e in enumerate(raw["experiments"]) if e["id"] == exp_id)


def set_exp(key, value, exp_id="D1-e0"):
    def f(raw):
        raw["experiments"][exp_index(raw, exp_id)][key] = value
    return f


def setter(path, value):
    def f(raw):
        d = raw
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return f


def deleter(path):
    def f(raw):
        d = raw
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
    return f


CASES = {
    "missing search section": (deleter(["search"]), "search"),
    "missing search key": (deleter(["search", "chains"]), "chains"),
    "missing connect key": (deleter(["connect", "max_pairs"]), "max_pairs"),
    "missing minimiser key": (deleter(["ljat3", "minimiser", "gtol"]), "gtol"),
    "unknown data set": (set_exp("data", "D9"), "data"),
    "L <= 0": (setter(["datasets", "D1", "L"], 0), "datasets.D1.L"),
    "odd n_starts": (setter(["ljat3", "n_starts"], 1001), "ljat3.n_starts"),
    "n_starts < 2": (setter(["ljat3", "n_starts"], 0), "ljat3.n_starts"),
    "Z not a number": (setter(["ljat3", "Z"], "strong"), "ljat3.Z"),
    "non-integer seed": (setter(["seed"], "abc"), "seed"),
    "unknown labelling": (setter(["ljat3", "labelling"], "magic"), "ljat3.labelling"),
    "error above 100": (set_exp("error", 150), "error"),
    "k < 1": (set_exp("locality", 0, "D1-h10-k1"), "locality"),
    "k larger than a layer": (set_exp("locality", 7, "D1-h10-k1"), "locality"),
    "N larger than the data": (set_exp("n_train", 150000), "n_train"),
    "widths not positive integers": (set_exp("hidden", [10, 0]), "hidden"),
    "widths not integers": (set_exp("hidden", [2.5]), "hidden"),
    "negative lambda": (set_exp("lam", -1e-4), "lam"),
    "inputs differ from features": (set_exp("inputs", 3), "inputs"),
    "wrong type": (setter(["search", "chains"], "many"), "search.chains"),
    "unknown key": (setter(["colour"], "blue"), "colour"),
    "unknown search key": (setter(["search", "temprature"], 1.0), "temprature"),
    "step outside its bounds": (setter(["search", "step_size"], 5.0), "search.step_size"),
    "unknown preset": (setter(["preset"], "huge"), "preset"),
    "empty experiment list": (setter(["experiments"], []), "experiments"),
    "missing IDX directory": (setter(["datasets", "MNIST"], {"kind": "mnist", "source": "idx", "idx_dir": "/no/such/dir"}), "idx_dir"),
    "unknown id in a table": (setter(["tables", "table1", "experiments"], ["D1-e0", "D1-e7"]), "tables.table1.experiments"),
    "unknown id in a preset": (setter(["presets", "smoke", "only"], ["D1-nope"]), "only"),
}


def test_default_config_resolves():
    cfg = resolve(copy.deepcopy(BASE), SCHEMA)
    assert len(cfg.experiments) == 26 and cfg.preset == "standard"  # 30 defined; D3 is in the connected preset
    assert {e.id for e in cfg.experiments if e.draws == 4} == {f"{d}-e{x}" for d in ("D1", "D2") for x in (0, 10, 50, 100)}
    assert {e.id for e in cfg.experiments if not e.transition_states} == {e.id for e in cfg.experiments if e.kind == "mnist"}


@pytest.mark.parametrize("section", ["search", "connect", "ljat3", "seed", "device", "threads", "figures_levels", "preset"])
def test_a_missing_section_is_named_not_filled_in(section):
    """config.yaml is the one source of every default: without the schema too, a missing section
    is an error that names it."""
    raw = copy.deepcopy(BASE)
    del raw[section]
    with pytest.raises(ConfigError, match=rf"^{section}: missing"):
        resolve(raw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_config_names_the_key(name):
    mutate, key = CASES[name]
    raw = copy.deepcopy(BASE)
    if name == "unknown id in a preset":
        raw["preset"] = "smoke"
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        resolve(raw, SCHEMA)
    assert key in str(err.value), str(err.value)


def test_a_user_file_adds_experiments_by_id_and_data_sets_by_name(caplog):
    user = {"datasets": {"XOR": {"kind": "table", "path": "x.csv", "features": ["a"], "label": "y", "classes": 2}},
            "experiments": [{"id": "mine", "data": "XOR", "hidden": [3], "n_train": 10},
                            {"id": "D1-e10", "data": "D1", "error": 20, "hidden": [10], "n_train": 1000}],
            "search": {"chains": 4}}
    merged = merge_user(copy.deepcopy(BASE), user, "my.yaml")
    ids = [e["id"] for e in merged["experiments"]]
    assert ids == [e["id"] for e in BASE["experiments"]] + ["mine"]  # D1-e10 replaced in place
    assert merged["experiments"][exp_index(merged, "D1-e10")]["error"] == 20
    assert "my.yaml: experiment D1-e10 replaces" in caplog.text
    assert set(merged["datasets"]) == set(BASE["datasets"]) | {"XOR"}
    assert merged["search"] == {**BASE["search"], "chains": 4} and merged["presets"] == BASE["presets"]
    assert merged["_user_ids"] == ["mine", "D1-e10"] and merged["_origin"]["mine"] == "my.yaml"


def test_the_example_runs_its_own_experiments_with_a_table_and_figures(monkeypatch):
    monkeypatch.chdir(ROOT)  # the example's data path is relative to the checkout
    example = ROOT / "examples/xor.yaml"
    cfg = resolve(with_user_files(ROOT / "config.yaml", [example], schema_path=SCHEMA), SCHEMA)
    assert cfg.ids() == ["xor-net", "xor-net-e20"] and cfg.preset == "standard"
    assert cfg.experiment("xor-net").search.steps == 40  # the preset still applies
    assert cfg.present(cfg.tables) == {"yours": {"title": "Your experiments", "kind": "landscape",
                                                 "experiments": ["xor-net", "xor-net-e20"]}}
    assert set(cfg.present(cfg.figures)) == {"yours_disconnectivity", "yours_auc"} and not cfg.paper_run
    both = resolve(with_user_files(ROOT / "config.yaml", [example], {"paper_experiments": True}, SCHEMA), SCHEMA)
    assert both.ids() == resolve(copy.deepcopy(BASE), SCHEMA).ids() + ["xor-net", "xor-net-e20"] and both.paper_run
    assert resolve(with_user_files(ROOT / "config.yaml", [ROOT / "config.yaml"]), SCHEMA).ids() == both.ids()[:-2]


def test_user_figures_draw_disconnectivity_graphs_only_where_there_are_transition_states():
    user = {"experiments": [{"id": "digits", "data": "MNIST", "hidden": [10], "n_train": 100},
                            {"id": "cluster", "data": "D1", "hidden": [4], "n_train": 100}]}
    cfg = apply_preset(merge_user(copy.deepcopy(BASE), user, "my.yaml"))
    assert cfg["tables"]["yours"]["kind"] == "minima"  # MNIST has no transition states by default
    assert cfg["figures"]["yours_disconnectivity"]["experiments"] == ["cluster"]
    assert cfg["figures"]["yours_auc"]["experiments"] == ["digits", "cluster"]


@pytest.mark.parametrize("text, key", [("experiments: [{id: x, data: D1, hidden: [0], n_train: 10}]", "experiments.0.hidden"),
                                       ("experiments: [{id: x, data: D7, hidden: [3], n_train: 10}]", "experiment x.data"),
                                       ("serach: {chains: 2}", "serach"),
                                       ("search: {chains: many}", "search.chains"),
                                       ("experiments: [{id: x, data: D1, hidden: [3], n_train: 10}", "cannot read it as YAML")])
def test_bad_input_in_a_user_file_names_the_file_and_key(tmp_path, text, key):
    f = tmp_path / "my.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        resolve(with_user_files(ROOT / "config.yaml", [f], schema_path=SCHEMA), SCHEMA)
    assert str(err.value).startswith(str(f)) and key in str(err.value), str(err.value)


def test_duplicate_experiment_ids():
    raw = copy.deepcopy(BASE)
    raw["experiments"].append(dict(raw["experiments"][0]))
    with pytest.raises(ConfigError, match=r"id: duplicate experiment id 'D1-e0'"):
        resolve(raw, SCHEMA)
