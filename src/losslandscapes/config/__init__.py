"""The workflow configuration: its types (``settings``) and how config.yaml becomes them (``load``)."""

from .load import apply_preset, load_yaml, merge_user, resolve, schema_errors, with_user_files
from .settings import Config, ConfigError, Connect, Experiment, Minimiser, Search, deep_merge, derive_seed, digest

__all__ = ["Config", "ConfigError", "Connect", "Experiment", "Minimiser", "Search", "apply_preset", "deep_merge",
           "derive_seed", "digest", "load_yaml", "merge_user", "resolve", "schema_errors", "with_user_files"]
