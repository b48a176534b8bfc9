"""Run directory layout and its SQLite ledger.

::

    runs/<run-id>/
      recipe.yaml          the resolved recipe (after --set overrides)
      ledger.sqlite        runs, steps, batches (durable partial results), artifacts
      steps/NN_<name>/     one folder per step: <dataset>.jsonl outputs, figures.json, sections.json, files
      quarantine/          records that failed a check, with the reason (text stays here, never in logs)
      report.json, report.html, manifest.json, manifest.sig

The ledger is the source of truth for resume: a step is done when its row says so; inside a step, every committed
batch is stored (records as JSONL) in one transaction, so a ``kill -9`` loses at most the batch in flight.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..data.records import Record
from ..exceptions import RunLockedError
from ..paths import confined, step_folder_name

__all__ = ["RunDir", "MANIFEST_FILES"]

#: the only files of a run directory that its manifest does not list: the manifest itself and its signature. Every
#: other file is listed whatever its name (the empty ``.lock`` too; the SQLite ledger is checkpointed and switched
#: out of WAL mode before the manifest is written, so no ``-wal``/``-shm`` file is left to excuse).
MANIFEST_FILES = ("manifest.json", "manifest.sig")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS steps (
  idx INTEGER PRIMARY KEY, name TEXT UNIQUE, type TEXT, cache_key TEXT, status TEXT,
  started REAL, finished REAL, attempts INTEGER DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS batches (
  step TEXT, idx INTEGER, n INTEGER, records TEXT, meta TEXT, committed REAL,
  PRIMARY KEY (step, idx));
CREATE TABLE IF NOT EXISTS artifacts (path TEXT PRIMARY KEY, step TEXT, sha256 TEXT, size INTEGER);
"""


class RunDir:
    """A run directory with its ledger and lock."""

    def __init__(self, path: str | Path):
        # resolved once, here: step outputs are confined (resolved) paths and are stored relative to the run dir, which
        # a relative `runs/…` (the README's `medsynth run` in a project folder) would not contain
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "steps").mkdir(exist_ok=True)
        (self.path / "quarantine").mkdir(exist_ok=True)
        self._lock = FileLock(str(self.path / ".lock"))
        self.db_path = self.path / "ledger.sqlite"
        self._db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # -- lock -------------------------------------------------------------------------------------------
    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RunLockedError(
                f"Another medsynth process is running in {self.path} (lock file .lock is held). Wait for it to finish, "
                "or use another --run-dir. A lock left by a killed process is released automatically."
            ) from None

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def close(self) -> None:
        self.release()
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error:
            pass
        self._db.close()

    @contextmanager
    def tx(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # -- run metadata ------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO run VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM run WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- steps -------------------------------------------------------------------------------------------
    def step_dir(self, idx: int, name: str) -> Path:
        # the recipe schema validates names too; step_folder_name checks again: the last line of defence
        d = confined(self.path / "steps", step_folder_name(idx, name))
        d.mkdir(parents=True, exist_ok=True)
        return d

    def step_row(self, name: str) -> dict[str, Any] | None:
        cur = self._db.execute("SELECT idx, name, type, cache_key, status, started, finished, attempts, error FROM steps WHERE name=?", (name,))
        row = cur.fetchone()
        if not row:
            return None
        return dict(zip(["idx", "name", "type", "cache_key", "status", "started", "finished", "attempts", "error"], row, strict=True))

    def start_step(self, idx: int, name: str, stype: str, cache_key: str) -> None:
        with self.tx() as db:
            row = db.execute("SELECT cache_key FROM steps WHERE name=?", (name,)).fetchone()
            if row and row[0] != cache_key:
                # config or inputs changed since the partial attempt: its batches are not reusable
                db.execute("DELETE FROM batches WHERE step=?", (name,))
            db.execute(
                "INSERT INTO steps (idx, name, type, cache_key, status, started, attempts) VALUES (?,?,?,?, 'running', ?, 1) "
                "ON CONFLICT(name) DO UPDATE SET cache_key=excluded.cache_key, status='running', started=excluded.started, attempts=attempts+1, error=NULL",
                (idx, name, stype, cache_key, time.time()),
            )

    def finish_step(self, name: str, status: str = "done", error: str | None = None) -> None:
        with self.tx() as db:
            db.execute("UPDATE steps SET status=?, finished=?, error=? WHERE name=?", (status, time.time(), error, name))

    def steps(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT idx, name, type, cache_key, status, started, finished, attempts, error FROM steps ORDER BY idx")
        return [dict(zip(["idx", "name", "type", "cache_key", "status", "started", "finished", "attempts", "error"], r, strict=True)) for r in cur]

    # -- batches -----------------------------------------------------------------------------------------
    def committed_batches(self, step: str) -> set[int]:
        return {r[0] for r in self._db.execute("SELECT idx FROM batches WHERE step=?", (step,))}

    def commit_batch(self, step: str, idx: int, records: list[Record], meta: dict[str, Any] | None = None) -> None:
        payload = "\n".join(r.to_json() for r in records)
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?,?,?,?,?,?)",
                (step, idx, len(records), payload, json.dumps(meta or {}), time.time()),
            )

    def batch_records(self, step: str) -> list[Record]:
        out: list[Record] = []
        for (payload,) in self._db.execute("SELECT records FROM batches WHERE step=? ORDER BY idx", (step,)):
            out.extend(Record.from_json(line) for line in payload.splitlines() if line)
        return out

    def batch_meta(self, step: str) -> dict[int, dict[str, Any]]:
        return {i: json.loads(m) for i, m in self._db.execute("SELECT idx, meta FROM batches WHERE step=? ORDER BY idx", (step,))}

    def clear_batches(self, step: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM batches WHERE step=?", (step,))
