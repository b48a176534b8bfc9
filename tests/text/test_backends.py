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
    assert finite == [True, False, False, False, False, False] or finite[:1] == [True]
    assert sum(finite) <= 3


def test_openai_backend_unreachable_server_clear_error():
    from medsynth.text.backends.openai_http import OpenAIBackend

    b = OpenAIBackend(model="m", base_url="http://127.0.0.1:9/v1", retries=1, timeout=2)
    with pytest.raises(ModelNotAvailableError, match="Cannot reach the OpenAI-compatible server at http://127.0.0.1:9/v1"):
        b.generate(["x"], GenParams(max_new_tokens=2))
