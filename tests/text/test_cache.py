"""The persistent generation cache: real SQLite, a real tiny transformers backend, two real processes."""

import hashlib
import multiprocessing as mp
import sqlite3

import pytest

from medsynth.exceptions import MedsynthError
from medsynth.text.backends.base import Backend, Completion, GenParams
from medsynth.text.backends.cache import CachedBackend, GenerationCache
from medsynth.text.backends.transformers import TransformersBackend


class HashBackend(Backend):
    """Deterministic text from (prompt, seed): lets the process test run without torch. Counts calls."""

    name = "hash"

    def __init__(self, tag: str = "m1", error_on: str | None = None):
        self.tag, self.calls, self.prompts_seen, self.error_on = tag, 0, 0, error_on

    @property
    def model_sha256(self):
        return hashlib.sha256(self.tag.encode()).hexdigest()

    def generate(self, prompts, params):
        self.calls += 1
        self.prompts_seen += len(prompts)
        out = []
        for i, p in enumerate(prompts):
            if p == self.error_on:
                out.append(Completion("", 1, 0, "error", {"error": "prompt_too_long"}))
            else:
                out.append(Completion(hashlib.sha256(f"{self.tag}:{p}:{params.seed}:{i}".encode()).hexdigest() * 4, 3, 7, "stop", {}))
        return out


P = GenParams(max_new_tokens=12, temperature=0.8, top_k=20, top_p=0.9, seed=3, batch_size=2)


def test_miss_then_hit_with_a_real_transformers_backend(tmp_path, tiny_lm):
    model, tok = tiny_lm
    inner = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, model_sha256="ab" * 32)
    prompts = ["FINDINGS: The heart", "IMPRESSION:", "FINDINGS: Mild cardiomegaly. Small"]
    want = inner.generate(prompts, P)
    cb = CachedBackend(inner, path=tmp_path / "g.sqlite")
    first = cb.generate(prompts, P)
    assert [c.text for c in first] == [c.text for c in want]  # empty cache = the inner backend exactly
    again = CachedBackend(inner, path=tmp_path / "g.sqlite").generate(prompts, P)  # a new process/instance
    assert [c.text for c in again] == [c.text for c in want] and all(c.meta.get("cached") for c in again)
    assert [c.completion_tokens for c in again] == [c.completion_tokens for c in want]
    s = cb.stats()
    assert s["misses"] == 3 and s["hits"] == 0 and s["stored"] == 3 and s["entries"] == 3


def test_key_covers_model_params_seed_and_occurrence_but_not_batch_size(tmp_path):
    inner = HashBackend()
    cb = CachedBackend(inner, path=tmp_path / "g.sqlite")
    cb.generate(["a", "b"], P)
    assert inner.prompts_seen == 2
    cb.generate(["a", "b"], P.model_copy(update={"batch_size": 7}))
    assert inner.prompts_seen == 2 and cb.hits == 2
    cb.generate(["a"], P.model_copy(update={"seed": 4}))
    cb.generate(["a"], P.model_copy(update={"temperature": 0.5}))
    cb.generate(["a"], P.model_copy(update={"stop": ["\n"]}))
    assert inner.prompts_seen == 5
    other = CachedBackend(HashBackend(tag="m2"), path=tmp_path / "g.sqlite")  # other weights: other namespace
    assert other.generate(["a"], P)[0].text != cb.generate(["a"], P)[0].text
    # identical prompts in one call are two samples (occurrence 0 and 1), both cached
    dup = cb.generate(["z", "z"], P)
    assert dup[0].text != dup[1].text
    assert [c.text for c in cb.generate(["z", "z"], P)] == [c.text for c in dup]


def test_errors_are_returned_but_never_stored(tmp_path):
    inner = HashBackend(error_on="long")
    cb = CachedBackend(inner, path=tmp_path / "g.sqlite")
    out = cb.generate(["ok", "long"], P)
    assert out[1].finish_reason == "error" and cb.stats()["entries"] == 1
    cb.generate(["ok", "long"], P)
    assert inner.prompts_seen == 3  # 'long' asked again, 'ok' from the cache


def test_lru_eviction_keeps_the_cache_bounded(tmp_path):
    cache = GenerationCache(tmp_path / "g.sqlite", max_bytes=4000)
    inner = HashBackend()
    cb = CachedBackend(inner, cache=cache)
    cb.generate([f"p{i}" for i in range(5)], P)  # ~400 B each
    cb.generate(["p0"], P)  # p0 becomes most recently used
    cb.generate([f"q{i}" for i in range(10)], P)
    t = cache.totals()
    assert t["bytes"] <= 4000 and cache.evicted > 0
    with sqlite3.connect(tmp_path / "g.sqlite") as con:
        n, b = con.execute("SELECT COUNT(*), COALESCE(SUM(size),0) FROM generations").fetchone()
    assert (n, b) == (t["entries"], t["bytes"])  # the trigger-kept totals are exact
    before = inner.prompts_seen
    cb.generate(["q9"], P)  # the newest survive
    assert inner.prompts_seen == before
    cb.generate(["p1"], P)  # the oldest were evicted
    assert inner.prompts_seen == before + 1


def _worker(path: str, wid: int, n: int) -> None:
    cb = CachedBackend(HashBackend(), path=path)
    for i in range(n):
        cb.generate([f"shared{i}", f"own{wid}-{i}"], P)


def test_two_processes_share_one_cache_safely(tmp_path):
    path = str(tmp_path / "g.sqlite")
    GenerationCache(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, w, 40)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = con.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    assert n == 40 + 2 * 40  # shared keys stored once
    assert GenerationCache(path).totals()["entries"] == n
    inner = HashBackend()
    CachedBackend(inner, path=path).generate([f"shared{i}" for i in range(40)], P)
    assert inner.prompts_seen == 0


def test_in_memory_model_without_identity_is_refused(tiny_lm):
    model, tok = tiny_lm
    with pytest.raises(MedsynthError, match="identity"):
        CachedBackend(TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok))
