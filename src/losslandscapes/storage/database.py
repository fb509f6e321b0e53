"""A restartable, append-only store of minima and transition states (SQLite, standard library).

Each search stage commits after every batch, so a killed job resumes from what was committed.
The store knows the settings it was made with: opened with other settings, the old file is
moved aside (``*.stale``) and a fresh one started, never mixed. Identity of minima and
transition states: plain (|dE| and Euclidean distance, the paper's count) and symmetry-aligned
(``sym_class`` = id of the first stored member of the class).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from losslandscapes.landscape.coverage import Coverage, chain_coverage

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS minima (
    id INTEGER PRIMARY KEY, loss REAL NOT NULL, params BLOB NOT NULL, rms_grad REAL NOT NULL,
    min_eig REAL NOT NULL, n_neg_eig INTEGER NOT NULL, sym_class INTEGER NOT NULL,
    found_at_step INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ts (
    id INTEGER PRIMARY KEY, loss REAL NOT NULL, params BLOB NOT NULL, min1 INTEGER NOT NULL,
    min2 INTEGER NOT NULL, neg_eig REAL NOT NULL, n_neg_eig INTEGER NOT NULL, rms_grad REAL NOT NULL,
    degenerate INTEGER NOT NULL, sym_class INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (a INTEGER, b INTEGER, attempts INTEGER NOT NULL, PRIMARY KEY (a, b));
CREATE TABLE IF NOT EXISTS chains (
    chain INTEGER PRIMARY KEY, step INTEGER NOT NULL, step_size REAL NOT NULL, loss REAL NOT NULL,
    params BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ts_found (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quenches (
    id INTEGER PRIMARY KEY, chain INTEGER NOT NULL, step INTEGER NOT NULL, minimum INTEGER NOT NULL,
    accepted INTEGER NOT NULL);
"""


class DatabaseError(RuntimeError):
    """A landscape database that cannot be read; the message names the file."""


ENGINE = 5  # bumped whenever stored points change meaning, so older databases are set aside, never resumed
# (2: push-offs follow the descent path (issue 19) and quenches use L-BFGS memory 40;
#  3: every basin-hopping quench and every transition state an attempt finds is recorded;
#  4: deep networks' symmetry classes from the alignment that undoes every exact image;
#  5: push-offs follow the steepest-descent path by local quadratic steps into a Newton region)


def settings_hash(settings: dict) -> str:
    """Identity of a store: its settings and the ``ENGINE`` that made it."""
    text = json.dumps({**settings, "engine": ENGINE}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Points:
    """In-memory copy of one kind of stationary point, for identity checks."""

    def __init__(self):
        self.ids: list[int] = []
        self.loss: list[float] = []
        self.x: list[np.ndarray] = []
        self.sym: list[int] = []

    def add(self, i, loss, x, sym):
        self.ids.append(i)
        self.loss.append(loss)
        self.x.append(x)
        self.sym.append(sym)

    def match(self, loss, x, symmetry, etol, dtol) -> tuple[int | None, int | None]:
        """(plain match id, symmetry class) of a point among the stored ones, or None."""
        if not self.ids:
            return None, None
        L = np.asarray(self.loss)
        near = np.flatnonzero(np.abs(L - loss) < etol * max(1.0, abs(loss)))
        for j in near:
            if np.linalg.norm(self.x[j] - x) < dtol:
                return self.ids[j], self.sym[j]
        for j in near:
            if self.sym[j] == self.ids[j] and symmetry.align(self.x[j], x)[1] < dtol:
                return None, self.sym[j]
        return None, None


class Database:
    """One stage's store at ``path`` for ``settings`` (a JSON-able dict)."""

    def __init__(self, path: str | Path, settings: dict, symmetry, etol: float, dtol: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.symmetry, self.etol, self.dtol = symmetry, etol, dtol
        digest = settings_hash(settings)
        if self.path.exists():
            try:
                con = sqlite3.connect(self.path)
                row = con.execute("SELECT value FROM meta WHERE key='settings_hash'").fetchone()
                con.close()
            except sqlite3.DatabaseError as err:
                raise DatabaseError(f"{self.path}: corrupted landscape database ({err}); delete it to start again") from None
            if row is None or row[0] != digest:
                stale = self.path.with_name(self.path.name + ".stale")
                os.replace(self.path, stale)
                log.warning("%s was made with other settings; moved to %s, starting afresh", self.path, stale)
        self.con = sqlite3.connect(self.path)
        try:
            self.con.executescript(SCHEMA)
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('settings_hash', ?)", (digest,))
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('settings', ?)", (json.dumps(settings, sort_keys=True, default=str),))
            self.con.commit()
            self.minima, self.ts = _Points(), _Points()
            for i, loss, blob, sym in self.con.execute("SELECT id, loss, params, sym_class FROM minima ORDER BY id"):
                self.minima.add(i, loss, np.frombuffer(blob, np.float64).copy(), sym)
            for i, loss, blob, sym in self.con.execute("SELECT id, loss, params, sym_class FROM ts ORDER BY id"):
                self.ts.add(i, loss, np.frombuffer(blob, np.float64).copy(), sym)
        except sqlite3.DatabaseError as err:
            raise DatabaseError(f"{self.path}: corrupted landscape database ({err}); delete it to start again") from None

    # -- meta -------------------------------------------------------------------------------
    def get(self, key: str, default=None):
        row = self.con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def commit(self) -> None:
        self.con.commit()

    def close(self) -> None:
        self.con.close()

    # -- minima -----------------------------------------------------------------------------
    def find_minimum(self, loss: float, x: np.ndarray) -> tuple[int | None, int | None]:
        return self.minima.match(loss, x, self.symmetry, self.etol, self.dtol)

    def add_minimum(self, loss, x, rms_grad, min_eig, n_neg, step) -> tuple[int, bool]:
        """(id, new?) of a verified minimum; a plain duplicate returns the stored id."""
        plain, sym = self.find_minimum(loss, x)
        if plain is not None:
            return plain, False
        i = len(self.minima.ids) + 1
        sym = i if sym is None else sym
        self.con.execute(
            "INSERT INTO minima VALUES (?,?,?,?,?,?,?,?)",
            (i, float(loss), np.asarray(x, np.float64).tobytes(), float(rms_grad), float(min_eig), int(n_neg), sym, int(step)),
        )
        self.minima.add(i, float(loss), np.asarray(x, np.float64).copy(), sym)
        return i, True

    def minimum_spectrum(self, i: int) -> tuple[float, int]:
        """(smallest Hessian eigenvalue, negative count) stored for minimum ``i``."""
        return self.con.execute("SELECT min_eig, n_neg_eig FROM minima WHERE id=?", (i,)).fetchone()

    def minimum_class(self, i: int) -> int:
        return self.minima.sym[i - 1]

    # -- transition states ------------------------------------------------------------------
    def find_ts(self, loss: float, x: np.ndarray) -> int | None:
        """Id of the stored transition state at ``x`` (not a symmetry image); None if there is none."""
        return self.ts.match(loss, x, self.symmetry, self.etol, self.dtol)[0]

    def add_ts(self, loss, x, min1, min2, neg_eig, n_neg, rms_grad) -> tuple[int, bool]:
        plain, sym = self.ts.match(loss, x, self.symmetry, self.etol, self.dtol)
        if plain is not None:
            return plain, False
        i = len(self.ts.ids) + 1
        sym = i if sym is None else sym
        degenerate = self.minimum_class(min1) == self.minimum_class(min2)
        self.con.execute(
            "INSERT INTO ts VALUES (?,?,?,?,?,?,?,?,?,?)",
            (i, float(loss), np.asarray(x, np.float64).tobytes(), int(min1), int(min2), float(neg_eig),
             int(n_neg), float(rms_grad), int(degenerate), sym),
        )
        self.ts.add(i, float(loss), np.asarray(x, np.float64).copy(), sym)
        return i, True

    def add_ts_found(self, i: int) -> None:
        """Transition state ``i`` was found (again) by an attempt."""
        self.con.execute("INSERT INTO ts_found (ts) VALUES (?)", (int(i),))

    def ts_found_classes(self) -> np.ndarray:
        """Symmetry class of every transition state found, in merge order."""
        rows = self.con.execute("SELECT ts FROM ts_found ORDER BY id").fetchall()
        return np.array([self.ts.sym[i - 1] for (i,) in rows], dtype=np.int64)

    def ts_edges(self) -> list[tuple[int, int]]:
        """Symmetry classes joined by each non-degenerate transition state."""
        rows = self.con.execute("SELECT min1, min2 FROM ts WHERE degenerate=0 ORDER BY id").fetchall()
        return [(self.minimum_class(a), self.minimum_class(b)) for a, b in rows]

    # -- attempts: pairs (a, b), single-ended searches (a, a) -------------------------------
    def attempts(self) -> dict[tuple[int, int], int]:
        return {(a, b): n for a, b, n in self.con.execute("SELECT a, b, attempts FROM pairs")}

    def add_attempt(self, a: int, b: int) -> None:
        a, b = min(a, b), max(a, b)
        self.con.execute(
            "INSERT INTO pairs VALUES (?, ?, 1) ON CONFLICT(a, b) DO UPDATE SET attempts = attempts + 1", (a, b)
        )

    # -- basin-hopping chains ---------------------------------------------------------------
    def save_chain(self, chain: int, step: int, step_size: float, loss: float, x: np.ndarray) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO chains VALUES (?,?,?,?,?)",
            (chain, step, float(step_size), float(loss), np.asarray(x, np.float64).tobytes()),
        )

    def load_chains(self) -> dict[int, tuple[int, float, float, np.ndarray]]:
        """{chain: (completed step, step size, loss, params)}."""
        rows = self.con.execute("SELECT chain, step, step_size, loss, params FROM chains").fetchall()
        return {c: (t, ss, f, np.frombuffer(b, np.float64).copy()) for c, t, ss, f, b in rows}

    def add_quench(self, chain: int, step: int, minimum: int, accepted: bool) -> None:
        """One basin-hopping quench: the minimum id it reached (-1: none) and whether the chain moved there."""
        self.con.execute("INSERT INTO quenches (chain, step, minimum, accepted) VALUES (?,?,?,?)",
                         (int(chain), int(step), int(minimum), int(accepted)))

    def quenches_frame(self) -> pd.DataFrame:
        """Every quench in the order it was merged: chain, step, minimum, accepted."""
        df = pd.read_sql_query("SELECT chain, step, minimum, accepted FROM quenches ORDER BY id", self.con)
        return df.astype({"chain": "int64", "step": "int64", "minimum": "int64", "accepted": "bool"})

    def quench_coverage(self) -> Coverage:
        """``coverage.chain_coverage`` of the symmetry classes that the quenches reached."""
        rows = self.con.execute("SELECT minimum, chain FROM quenches WHERE minimum > 0 ORDER BY id").fetchall()
        return chain_coverage([self.minimum_class(m) for m, _ in rows], [c for _, c in rows])

    # -- export -----------------------------------------------------------------------------
    def minima_frame(self) -> pd.DataFrame:
        df = pd.read_sql_query("SELECT * FROM minima ORDER BY id", self.con)
        df["params"] = [np.frombuffer(b, np.float64) for b in df["params"]]
        return df

    def ts_frame(self) -> pd.DataFrame:
        df = pd.read_sql_query("SELECT * FROM ts ORDER BY id", self.con)
        df["params"] = [np.frombuffer(b, np.float64) for b in df["params"]]
        df["degenerate"] = df["degenerate"].astype(bool)
        return df
