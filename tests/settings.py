"""The repository's config.yaml settings for tests that build ``Search`` and ``Connect`` by hand
(config.yaml is where every setting is defined; the dataclasses have no defaults)."""

from pathlib import Path

from losslandscapes.config import Connect, Search, load_yaml

CONFIG = load_yaml(Path(__file__).resolve().parents[1] / "config.yaml")


def search(**over) -> Search:
    return Search(**{**CONFIG["search"], **over})


def connect(**over) -> Connect:
    return Connect(**{**CONFIG["connect"], **over})


def raw_config(**over) -> dict:
    """config.yaml with the sections in ``over`` merged over its own (mappings key by key, lists
    replaced; an empty mapping empties its section): a small configuration for a test, every
    other setting as the repository's."""
    from losslandscapes.config import deep_merge

    raw = deep_merge(CONFIG, over)
    raw.update({k: {} for k, v in over.items() if v == {}})
    return raw
