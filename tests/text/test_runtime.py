"""Runtime choice by measurement (medsynth/text/runtime.py): measured once per CPU signature and model, cached,
measured again when the CPU changes; the backend runs with the chosen threads and says how they were chosen."""

import json

import torch

from medsynth.text.backends.base import GenParams
from medsynth.text.backends.transformers import TransformersBackend
from medsynth.text.runtime import candidate_threads, choose_runtime, cpu_signature


def test_choice_is_measured_cached_and_remeasured_for_another_cpu(tiny_lm, tmp_path):
    model, tok = tiny_lm
    path = tmp_path / "runtime.json"
    kw = dict(cache_path=path, batch=4, prompt_tokens=16, decode_steps=4)
    first = choose_runtime(model, tok, "ab" * 32, **kw)
    assert first["how"] == "measured"
    cands = first["candidates"]
    assert {(r["dtype"], r["threads"]) for r in cands} == {(d, t) for d in ("float32", "bfloat16") for t in candidate_threads()}
    timed = [r for r in cands if r["seconds"] is not None]
    fastest = min(timed, key=lambda r: r["seconds"])
    assert (first["dtype"], first["threads"]) == (fastest["dtype"], fastest["threads"])
    assert all(r["seconds"] > 0 and r["tokens_per_s"] > 0 for r in timed)
    assert all("skipped" in r for r in cands if r["seconds"] is None)
    assert len(timed) >= 1 + len(candidate_threads())  # float32 with every thread count, bf16 with all cores at least
    assert next(iter(model.parameters())).dtype == torch.float32  # measuring bf16 never converted the caller's model
    again = choose_runtime(model, tok, "ab" * 32, **kw)
    assert again["how"] == "cached" and again["candidates"] == cands
    other = choose_runtime(model, tok, "ab" * 32, signature="another-cpu", dtypes=("float32",), **kw)
    assert other["how"] == "measured" and {r["dtype"] for r in other["candidates"]} == {"float32"}
    assert len(json.loads(path.read_text())) == 2
    assert len(cpu_signature()) == 16


def test_backend_runs_with_given_threads_and_restores_the_process_setting(tiny_lm):
    model, tok = tiny_lm
    before = torch.get_num_threads()
    b = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, threads=1)
    assert b.runtime["threads"] == 1 and b.runtime["how"] == "given"
    seen = []
    orig = b._generate

    def spy(prompts, params):
        seen.append(torch.get_num_threads())
        return orig(prompts, params)

    b._generate = spy
    b.generate(["FINDINGS:"], GenParams(max_new_tokens=3, seed=0))
    assert seen == [1]
    assert torch.get_num_threads() == before
