"""Canary exposure: canaries inserted (repeated) into a tiny LM's adapter training set are exposed; the base model
is not. Real training (peft LoRA), real scoring."""

import math

import pytest

from medsynth.audit.canary import CanaryExposureAudit, CanaryPolicy, canary_exposures, make_canaries, secret_logprobs
from medsynth.registry import AUDITS
from medsynth.text.adapt import render_document
from tests.helpers import CORPUS, build_tiny_lm

TEMPLATE = "Findings list: {labels}\n{text}"
_BIG: list = []  # the 6-digit canary trained by the fixture


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained():
    """The base tiny LM, and a copy fine-tuned (all weights: a random 2-layer model is too weak a host for LoRA to
    memorise in a unit test; LoRA on Gemma is measured in benchmarks/bench_adapt.py) on 4 reports + 3 canaries ×4."""
    import torch

    from medsynth.lm import encode_documents, pad_batch, per_sample_nll

    canaries = make_canaries(3, repeats=[4], digits=3, seed=7, template=TEMPLATE)
    big = make_canaries(5, repeats=[4], digits=6, seed=9, template=TEMPLATE)[4:]  # another shell, |R| = 10^6
    docs = [render_document(t, ["normal"], TEMPLATE) for t in CORPUS]
    for c in canaries + big:
        docs += [render_document(c.text, c.labels, TEMPLATE)] * c.meta["canary"]["repeats"]
    base, tok = build_tiny_lm(seed=11)
    model, tok2 = build_tiny_lm(seed=11)
    tok2.padding_side = "right"
    ids, _ = encode_documents(tok2, docs, 256)
    x, am = pad_batch(ids, tok2.pad_token_id)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(50):
        per_sample_nll(model, x, am)[0].mean().backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    _BIG[:] = big
    return canaries, base, tok, model, tok2


def test_canaries_are_unique_corpus_style_and_carry_their_space():
    cs = make_canaries(8, repeats=[1, 4], digits=6, seed=1)
    assert len({c.text for c in cs}) == 8 and len({c.meta["canary"]["context"] for c in cs}) == 8
    for i, c in enumerate(cs):
        m = c.meta["canary"]
        assert m["space_size"] == 10**6 and len(m["secret"]) == 6 and m["secret"].isdigit()
        assert m["repeats"] == [1, 4][i % 2]
        assert c.text.startswith("FINDINGS:") and "IMPRESSION:" in c.text and m["secret"] in c.text
        assert m["context"].startswith("Findings list: normal chest\nFINDINGS:") and m["secret"] not in m["context"]
    assert [c.meta["canary"]["secret"] for c in make_canaries(8, digits=6, seed=1)] == [c.meta["canary"]["secret"] for c in cs]


def test_secret_logprobs_cache_path_equals_full_forward(trained):
    import torch

    canaries, base, tok, _, _ = trained
    ctx = canaries[0].meta["canary"]["context"]
    secrets = ["123", "999", canaries[0].meta["canary"]["secret"]]
    fast = secret_logprobs(base, tok, ctx, secrets)
    for s, v in zip(secrets, fast, strict=True):
        ids = torch.tensor([tok(ctx + s)["input_ids"]])
        n = len(tok(ctx)["input_ids"])
        with torch.no_grad():
            lp = torch.log_softmax(base(ids).logits.float(), -1)[0]
        ref = sum(float(lp[t - 1, ids[0, t]]) for t in range(n, ids.shape[1]))
        assert abs(ref - v) < 1e-3


@pytest.fixture(scope="module")
def audited(trained):
    canaries, base, tok, adapted, tok2 = trained
    a = AUDITS.get("canary_exposure")(CanaryPolicy())
    return a.run([], canaries, None, model=adapted, tokenizer=tok2), a.run([], canaries, None, model=base, tokenizer=tok)


def test_trained_model_exposes_repeated_canaries_and_base_model_does_not(trained, audited):
    canaries = trained[0]
    hi_res, lo_res = audited
    hi, lo = hi_res.sections["canary_rows"], lo_res.sections["canary_rows"]
    assert all(r["method"] == "enumerated" for r in hi + lo)
    thr = math.log2(len(canaries) / CanaryPolicy().alpha)
    assert min(r["exposure"] for r in hi) >= thr, hi
    assert max(r["exposure"] for r in lo) < thr, lo
    # the audit fails on the trained model and passes on the base one; findings name canary ids only
    assert hi_res.verdict == "fail" and {f.record_id for f in hi_res.findings} == {c.id for c in canaries}
    assert all(c.meta["canary"]["secret"] not in str(hi_res.release_reasons) + str(hi_res.figures) for c in canaries)
    assert lo_res.verdict == "pass" and not lo_res.findings
    assert [f["value"] for f in hi_res.figures if f["name"].endswith(".threshold")] == [round(thr, 3)]


def test_sampled_estimate_for_large_spaces(trained):
    """|R| = 10^6 > enumerate_max: uniform candidates + skew-normal extrapolation."""
    _, base, tok, adapted, tok2 = trained
    big = make_canaries(2, repeats=1, digits=6, seed=3, template=TEMPLATE)
    # the adapted model never saw these secrets: low exposure; its own canaries (3 digits) padded to 6 are not used
    rows = canary_exposures(adapted, tok2, big, CanaryPolicy(candidates=100))
    assert all(r["method"] == "skewnorm" and r["candidates"] == 100 for r in rows)
    assert all(0 <= r["exposure"] <= math.log2(10**6) for r in rows)
    assert max(r["exposure"] for r in rows) < math.log2(2 / 0.01)
    # a 6-digit canary the model was trained on: the extrapolated exposure crosses the threshold, the sampled one
    # saturates near log2(candidates) as documented
    hot = canary_exposures(adapted, tok2, _BIG, CanaryPolicy(candidates=100))[0]
    assert hot["exposure"] >= math.log2(1 / 0.01) and hot["more_likely"] == 0
    assert hot["exposure_sampled"] <= math.log2(101) + 0.01


def test_audit_skips_clearly_without_canaries_or_model(trained):
    canaries, base, tok, _, _ = trained
    a = CanaryExposureAudit()
    assert a.run([], [], None, model=base, tokenizer=tok).figures[0]["name"] == "canary_exposure.skipped"
    r = a.run([], canaries, None)
    assert r.verdict == "skipped" and "no local model" in r.reason and "no local model" in r.figures[0]["how"]


def test_report_renders_the_exposure_section(audited):
    from medsynth.audit.report import _generic_plot

    sec = audited[0].sections["exposure"]
    assert sec["plot"]["kind"] == "bars" and "<svg" in _generic_plot(sec)
