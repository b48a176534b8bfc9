"""A persistent, content-addressed generation cache around any backend (SQLite, safe across processes, bounded).

API (for the generate step)::

    from medsynth.text.backends.cache import CachedBackend
    backend = CachedBackend(TransformersBackend(...))        # $MEDSYNTH_HOME/cache/generations.sqlite, 1 GiB cap
    comps = backend.generate(prompts, params)                 # hits come from the cache, misses from the backend
    backend.stats()  # {"hits", "misses", "stored", "evicted", "entries", "bytes", "max_bytes", "path"} for the report
    backend.close()

Key: ``sha256(namespace, prompt, params without batch_size, seed, occurrence)`` where ``namespace`` is the inner
backend's :attr:`~medsynth.text.backends.base.Backend.identity` (model weights' sha256 + adapter sha256 for local
models; ``name@base_url`` for remote servers — pass ``namespace=`` to pin a remote model version yourself) and
``occurrence`` numbers identical prompts within one call (two equal prompts in a call get two samples). A batch's
misses are generated together in one call to the inner backend, in their original order, so an empty cache returns
exactly what the inner backend would; a hit returns exactly the completion stored when it was first generated.
(The transformers backend samples per batch, so a prompt's sample depends on its batch-mates: with a partly warm
cache the misses are batched differently than without a cache. Both are samples of the same distribution, and every
later run is reproducible from the cache.) ``finish_reason == "error"`` completions are never stored.

Storage: one SQLite file (WAL, ``busy_timeout``, ``BEGIN IMMEDIATE`` around writes, ``INSERT OR IGNORE`` so two
processes generating the same key keep the first). A trigger-maintained byte total bounds the file: when it passes
``max_bytes`` the least recently used entries are deleted down to 90% of it. Hits refresh ``last_used``.
The cache holds generated text (as sensitive as the run directories that hold it too) and never prompts — only
their hashes; the file is created with mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...exceptions import MedsynthError
from .base import Backend, Completion, GenParams

__all__ = ["CachedBackend", "GenerationCache", "default_cache_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
  key TEXT PRIMARY KEY,
  namespace TEXT NOT NULL,
  text TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  finish_reason TEXT NOT NULL,
  meta TEXT NOT NULL,
  size INTEGER NOT NULL,
  created REAL NOT NULL,
  last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_lru ON generations(last_used);
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL, entries INTEGER NOT NULL);
INSERT OR IGNORE INTO totals(id, bytes, entries) VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS gen_ins AFTER INSERT ON generations BEGIN
  UPDATE totals SET bytes = bytes + NEW.size, entries = entries + 1 WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS gen_del AFTER DELETE ON generations BEGIN
  UPDATE totals SET bytes = bytes - OLD.size, entries = entries - 1 WHERE id = 0; END;
"""


def default_cache_path() -> Path:
    from ...paths import home

    return home() / "cache" / "generations.sqlite"


class GenerationCache:
    """The SQLite store (usable on its own); :class:`CachedBackend` is the backend wrapper."""

    def __init__(self, path: str | Path | None = None, max_bytes: int = 1 << 30, timeout: float = 60.0):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024")
        self.max_bytes = int(max_bytes)
        self.timeout = timeout
        new = not self.path.exists()
        with self._connect() as con:
            con.executescript(_SCHEMA)
        if new:
            try:
                os.chmod(self.path, 0o600)
            except OSError:  # pragma: no cover
                pass
        self.evicted = 0

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            yield con
        finally:
            con.close()

    def _begin(self, con: sqlite3.Connection) -> None:
        for attempt in range(100):
            try:
                con.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if ("locked" not in str(e) and "busy" not in str(e)) or attempt == 99:
                    raise MedsynthError(f"the generation cache {self.path} is locked by another process for too long; "
                                        "retry, or point the cache elsewhere (MEDSYNTH_HOME).") from e
                time.sleep(0.05)

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        if not keys:
            return {}
        out: dict[str, Completion] = {}
        with self._connect() as con:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, text, prompt_tokens, completion_tokens, finish_reason, meta FROM generations WHERE key IN ({','.join('?' * len(chunk))})"
                for k, text, pt, ct, fin, meta in con.execute(q, chunk):
                    m = json.loads(meta)
                    m["cached"] = True
                    out[k] = Completion(text, pt, ct, fin, m)
            if out:
                now = time.time()
                self._begin(con)
                con.executemany("UPDATE generations SET last_used=? WHERE key=?", [(now, k) for k in out])
                con.execute("COMMIT")
        return out

    def put_many(self, namespace: str, items: list[tuple[str, Completion]]) -> int:
        rows = []
        now = time.time()
        for k, c in items:
            if c.finish_reason == "error":
                continue
            meta = json.dumps({kk: vv for kk, vv in (c.meta or {}).items() if kk != "cached"}, default=str)
            size = len(c.text.encode("utf-8")) + len(meta) + len(k) + 64
            rows.append((k, namespace, c.text, int(c.prompt_tokens), int(c.completion_tokens), c.finish_reason, meta, size, now, now))
        if not rows:
            return 0
        with self._connect() as con:
            self._begin(con)
            try:
                before = con.execute("SELECT entries FROM totals WHERE id=0").fetchone()[0]
                con.executemany("INSERT OR IGNORE INTO generations(key, namespace, text, prompt_tokens, completion_tokens, finish_reason, meta, size, created, last_used)"
                                " VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                stored = con.execute("SELECT entries FROM totals WHERE id=0").fetchone()[0] - before
                total = con.execute("SELECT bytes FROM totals WHERE id=0").fetchone()[0]
                if total > self.max_bytes:
                    target = int(self.max_bytes * 0.9)
                    victims = []
                    acc = total
                    for k, size in con.execute("SELECT key, size FROM generations ORDER BY last_used, key"):
                        if acc <= target:
                            break
                        victims.append((k,))
                        acc -= size
                    con.executemany("DELETE FROM generations WHERE key=?", victims)
                    self.evicted += len(victims)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(stored)

    def totals(self) -> dict[str, int]:
        with self._connect() as con:
            b, n = con.execute("SELECT bytes, entries FROM totals WHERE id=0").fetchone()
        return {"bytes": int(b), "entries": int(n)}

    def clear(self) -> None:
        with self._connect() as con:
            self._begin(con)
            con.execute("DELETE FROM generations")
            con.execute("COMMIT")


def cache_key(namespace: str, prompt: str, params: GenParams, occurrence: int) -> str:
    p = params.model_dump(mode="json", exclude={"batch_size"})
    payload = json.dumps({"ns": namespace, "prompt": prompt, "params": p, "occ": occurrence}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedBackend(Backend):
    """Wrap ``inner`` with a :class:`GenerationCache`. See the module docstring for the key and the guarantees."""

    def __init__(self, inner: Backend, path: str | Path | None = None, max_bytes: int = 1 << 30, namespace: str | None = None,
                 cache: GenerationCache | None = None):
        self.inner = inner
        self.name = f"cached:{inner.name}"
        ns = namespace or inner.identity
        if not namespace and inner.model_sha256 is None and inner.name == "transformers":
            raise MedsynthError("the generation cache needs the model's identity: this transformers backend was built from an "
                                "in-memory model without model_sha256. Pass model_sha256= to the backend or namespace= to the cache.")
        self.namespace = ns
        self.cache = cache or GenerationCache(path, max_bytes=max_bytes)
        self.hits = 0
        self.misses = 0
        self.stored = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def model_sha256(self) -> str | None:
        return self.inner.model_sha256

    @property
    def identity(self) -> str:
        return self.namespace

    @property
    def context_length(self) -> int | None:
        return self.inner.context_length

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        seen: dict[str, int] = {}
        keys = []
        for p in prompts:
            occ = seen.get(p, 0)
            seen[p] = occ + 1
            keys.append(cache_key(self.namespace, p, params, occ))
        got = self.cache.get_many(list(dict.fromkeys(keys)))
        miss_idx = [i for i, k in enumerate(keys) if k not in got]
        self.hits += len(prompts) - len(miss_idx)
        self.misses += len(miss_idx)
        results: list[Completion | None] = [got.get(k) for k in keys]
        if miss_idx:
            fresh = self.inner.generate([prompts[i] for i in miss_idx], params)
            if len(fresh) != len(miss_idx):
                raise MedsynthError(f"backend {self.inner.name} returned {len(fresh)} completions for {len(miss_idx)} prompts")
            for i, c in zip(miss_idx, fresh, strict=True):
                results[i] = c
            self.stored += self.cache.put_many(self.namespace, [(keys[i], c) for i, c in zip(miss_idx, fresh, strict=True)])
        return [r for r in results if r is not None]

    def stats(self) -> dict[str, Any]:
        t = self.cache.totals()
        return {"hits": self.hits, "misses": self.misses, "stored": self.stored, "evicted": self.cache.evicted,
                "entries": t["entries"], "bytes": t["bytes"], "max_bytes": self.cache.max_bytes, "path": str(self.cache.path),
                "hit_rate": round(self.hits / max(self.hits + self.misses, 1), 4)}

    def close(self) -> None:
        self.inner.close()
