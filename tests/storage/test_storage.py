"""Artefacts and the database: damaged or foreign files are named, other settings never resumed."""

import numpy as np
import pandas as pd
import pytest

from fixtures import NoSymmetry  # tests/fixtures.py
from losslandscapes.storage.artefacts import ArtefactError, read_parquet, write_parquet
from losslandscapes.storage.database import Database, DatabaseError


def test_truncated_and_foreign_parquet(tmp_path):
    good = tmp_path / "a.parquet"
    write_parquet(good, pd.DataFrame({"x": [1.0, 2.0]}), {"k": 1})
    bad = tmp_path / "b.parquet"
    bad.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(ArtefactError, match="b.parquet"):
        read_parquet(bad)
    foreign = tmp_path / "c.parquet"
    pd.DataFrame({"x": [1.0]}).to_parquet(foreign)
    with pytest.raises(ArtefactError, match="c.parquet.*metadata"):
        read_parquet(foreign)
    with pytest.raises(ArtefactError, match="d.parquet: file not found"):
        read_parquet(tmp_path / "d.parquet")


def test_corrupted_database(tmp_path):
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseError, match="db.sqlite: corrupted"):
        Database(path, {"a": 1}, NoSymmetry(), 1e-6, 0.1)


def test_database_with_other_settings_is_moved_aside(tmp_path):
    path = tmp_path / "db.sqlite"
    db = Database(path, {"a": 1}, NoSymmetry(), 1e-6, 0.1)
    db.add_minimum(1.0, np.zeros(2), 0.0, 1.0, 0, 0)
    db.commit()
    db.close()
    db = Database(path, {"a": 2}, NoSymmetry(), 1e-6, 0.1)
    assert not db.minima.ids and (tmp_path / "db.sqlite.stale").exists()


def test_database_of_an_older_engine_is_moved_aside(tmp_path, monkeypatch):
    """Stored points from an engine whose results meant something else (e.g. push-offs before
    issue 19) are never resumed."""
    from losslandscapes.storage import database

    path = tmp_path / "db.sqlite"
    monkeypatch.setattr(database, "ENGINE", database.ENGINE - 1)
    db = Database(path, {"a": 1}, NoSymmetry(), 1e-6, 0.1)
    db.add_minimum(1.0, np.zeros(2), 0.0, 1.0, 0, 0)
    db.commit()
    db.close()
    monkeypatch.undo()
    db = Database(path, {"a": 1}, NoSymmetry(), 1e-6, 0.1)
    assert not db.minima.ids and (tmp_path / "db.sqlite.stale").exists()
