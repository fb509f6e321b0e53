"""Reading and writing artefacts: Parquet with key-value metadata, written atomically.

Every artefact is written to a temporary name beside its destination and renamed into place, so a
crash never leaves a half-written file where a finished one is expected. Metadata never holds
timestamps, host names or absolute paths, so equal inputs give byte-identical files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from losslandscapes import __version__

META_KEY = b"losslandscapes"


class ArtefactError(ValueError):
    """An input artefact is missing, truncated or not one of ours; the message names the file."""


def source_hash() -> str:
    """SHA-256 (first 16 hex digits) of the package's Python sources, in path order."""
    h = hashlib.sha256()
    root = Path(__file__).parents[1]
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_parquet(path: str | Path, df: pd.DataFrame | pa.Table, meta: dict) -> None:
    """Write ``df`` with ``meta`` (JSON, plus package version and source hash) atomically."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    full = {"package_version": __version__, "source_hash": source_hash(), **meta}
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[META_KEY] = json.dumps(full, sort_keys=True, default=_json_default).encode()
    table = table.replace_schema_metadata(schema_meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_parquet(path: str | Path, columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
    """(frame, metadata) of one of our artefacts; ``ArtefactError`` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path}: file not found")
    try:
        table = pq.read_table(path, columns=columns)
    except Exception as err:  # pyarrow raises several types for truncated or foreign files
        raise ArtefactError(f"{path}: not a readable Parquet file ({err})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ArtefactError(f"{path}: Parquet file has no losslandscapes metadata (not written by this pipeline)")
    return table.to_pandas(), json.loads(raw)


def require_columns(df: pd.DataFrame, columns, path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ArtefactError(f"{path}: missing column(s) {missing}")
