"""Streaming deduplication of generated texts: exact (normalised-text hash) + near duplicates (MinHash-LSH, datasketch).

API (for the generate step)::

    from medsynth.text.dedup import Deduplicator
    dd = Deduplicator(threshold=0.85, num_perm=128, ngram=3)   # word 3-gram Jaccard ≥ 0.85 = near duplicate
    dd.preload(seed_records)            # optional: index texts that outputs must not duplicate (seeds), never flagged
    r = dd.add(record_id, text)         # → DedupResult(id, duplicate_of, reason, similarity)
    if r.duplicate_of: ctx.quarantine(rec, f"{r.reason}_duplicate")   # reason: "exact" | "near"
    results = dd.add_many([(id, text), ...])   # the same, MinHash signatures computed in bulk
    dd.stats()  # {"seen", "unique", "exact", "near", "indexed", "evicted", "threshold", ...} for the report

Semantics: records are compared with everything added before them (and with preloaded texts), in order; a duplicate
is reported with the id of the first record it duplicates and is *not* indexed for near matches (the first
occurrence stands for its cluster; its exact text is remembered, so a verbatim copy of a near duplicate is an exact
duplicate of it), so results are deterministic for a given input order and independent of batch boundaries. Exact: sha256
of the text after NFKC, case folding, and collapsing punctuation/whitespace (digits are kept: "3 cm" ≠ "5 cm").
Near: MinHash (``num_perm`` permutations, fixed ``seed``) of the word ``ngram``-shingles, candidates from an LSH
index tuned for ``threshold``, confirmed by the estimated Jaccard ≥ threshold; ties go to the earliest record.

Memory is bounded: the near-duplicate index keeps at most ``max_items`` signatures (FIFO window; older ones are
evicted and counted — ≈ 2-3 KB per indexed text at 128 permutations) and the exact index keeps an 8-byte digest and
the id per unique text. Texts are never stored.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..data.records import id_ref

__all__ = ["Deduplicator", "DedupResult", "normalise", "shingles"]

_PUNCT = re.compile(r"[^\w]+", re.UNICODE)


def normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCT.sub(" ", t).strip()


def shingles(text: str, n: int = 3) -> list[bytes]:
    toks = normalise(text).split()
    if not toks:
        return [b""]
    if len(toks) < n:
        return [" ".join(toks).encode()]
    return sorted({" ".join(toks[i : i + n]).encode() for i in range(len(toks) - n + 1)})


@dataclass(frozen=True)
class DedupResult:
    id: str
    duplicate_of: str | None = None
    reason: str | None = None  # "exact" | "near" | None
    similarity: float | None = None


class Deduplicator:
    def __init__(self, threshold: float = 0.85, num_perm: int = 128, ngram: int = 3, seed: int = 1,
                 max_items: int | None = 200_000, exact: bool = True, near: bool = True):
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if num_perm < 16:
            raise ValueError("num_perm must be ≥ 16")
        if max_items is not None and max_items < 1:
            raise ValueError("max_items must be ≥ 1 (or None for no bound)")
        from datasketch import MinHashLSH

        self.threshold, self.num_perm, self.ngram, self.seed = threshold, num_perm, ngram, seed
        self.max_items, self.exact, self.near = max_items, exact, near
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._sigs: OrderedDict[str, Any] = OrderedDict()  # id -> LeanMinHash (insertion order = FIFO window)
        self._order: dict[str, int] = {}
        self._exact: dict[bytes, str] = {}
        self._ids: set[str] = set()
        self._n = 0
        self._counts = {"seen": 0, "unique": 0, "exact": 0, "near": 0, "evicted": 0, "preloaded": 0}

    # -- signatures ------------------------------------------------------------------------------------
    def _minhashes(self, texts: list[str]) -> list[Any]:
        from datasketch import LeanMinHash, MinHash

        mhs = MinHash.bulk([shingles(t, self.ngram) for t in texts], num_perm=self.num_perm, seed=self.seed)
        return [LeanMinHash(m) for m in mhs]

    @staticmethod
    def _digest(text: str) -> bytes:
        return hashlib.sha256(normalise(text).encode()).digest()[:8]

    # -- core ------------------------------------------------------------------------------------------
    def _process(self, rid: str, text: str, mh: Any, insert: bool, count: bool = True) -> DedupResult:
        if rid in self._ids:
            raise ValueError(f"record {id_ref(rid)} was already added to this deduplicator; ids must be unique")
        if count:
            self._counts["seen"] += 1
        d = self._digest(text) if self.exact else None
        if d is not None and d in self._exact:
            if count:
                self._counts["exact"] += 1
            return DedupResult(rid, self._exact[d], "exact", 1.0)
        if self.near and mh is not None and self._sigs:
            best: tuple[float, int, str] | None = None
            for cid in self._lsh.query(mh):
                sim = float(mh.jaccard(self._sigs[cid]))
                if sim >= self.threshold:
                    cand = (-sim, self._order[cid], cid)
                    if best is None or cand < best:
                        best = cand
            if best is not None:
                if count:
                    self._counts["near"] += 1
                if insert and d is not None:
                    self._exact[d] = rid  # a later verbatim copy of this text is an exact duplicate of it
                return DedupResult(rid, best[2], "near", round(-best[0], 4))
        if insert:
            self._ids.add(rid)
            if d is not None:
                self._exact[d] = rid
            if self.near and mh is not None:
                self._lsh.insert(rid, mh)
                self._sigs[rid] = mh
                self._order[rid] = self._n
                self._n += 1
                while self.max_items is not None and len(self._sigs) > self.max_items:
                    old, _ = self._sigs.popitem(last=False)
                    self._lsh.remove(old)
                    self._order.pop(old, None)
                    self._counts["evicted"] += 1
            if count:
                self._counts["unique"] += 1
        return DedupResult(rid)

    def check(self, rid: str, text: str) -> DedupResult:
        """Would ``text`` be a duplicate? (nothing is indexed or counted)"""
        mh = self._minhashes([text])[0] if self.near else None
        return self._process(rid, text, mh, insert=False, count=False)

    def add(self, rid: str, text: str) -> DedupResult:
        return self.add_many([(rid, text)])[0]

    def add_many(self, items: Iterable[tuple[str, str]]) -> list[DedupResult]:
        items = list(items)
        mhs = self._minhashes([t for _, t in items]) if self.near else [None] * len(items)
        return [self._process(rid, t, mh, insert=True) for (rid, t), mh in zip(items, mhs, strict=True)]

    def preload(self, items: Iterable[Any]) -> int:
        """Index texts (records with ``.id``/``.text`` or (id, text) pairs) that later ones must not duplicate."""
        pairs = [(r.id, r.text or "") if hasattr(r, "id") else (str(r[0]), str(r[1])) for r in items]
        mhs = self._minhashes([t for _, t in pairs]) if self.near else [None] * len(pairs)
        n = 0
        for (rid, t), mh in zip(pairs, mhs, strict=True):
            if self._process(rid, t, mh, insert=True, count=False).duplicate_of is None:
                n += 1
        self._counts["preloaded"] += n
        return n

    def stats(self) -> dict[str, Any]:
        return {**self._counts, "indexed": len(self._sigs), "exact_index": len(self._exact), "threshold": self.threshold,
                "num_perm": self.num_perm, "ngram": self.ngram, "max_items": self.max_items}

    def __len__(self) -> int:
        return len(self._ids)
