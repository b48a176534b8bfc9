"""Adapters (LoRA / prefix / prompt tuning), DP-SGD with the real Opacus accountant and ledger, on tiny random LMs."""

import copy
import json

import pytest

from medsynth.exceptions import ModelNotAvailableError, PrivacyBudgetExceededError
from medsynth.ledger import BudgetLedger
from medsynth.lm import corpus_perplexity
from medsynth.text.adapt import METHODS, DPConfig, TrainConfig, resolve_adapter, save_adapter, train_adapter
from tests.helpers import CORPUS, build_tiny_lm

DOCS = [c for c in CORPUS] * 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def fresh_lm():
    model, tok = build_tiny_lm(seed=3)
    tok.padding_side = "right"
    return model, tok


@pytest.mark.parametrize(("method", "lr", "max_ratio"), [("lora", 3e-2, 0.8), ("prefix", 1e-1, 0.92), ("prompt_tuning", 1e-1, 0.985)])
def test_each_method_trains_only_its_parameters_and_lowers_loss(fresh_lm, method, lr, max_ratio):
    # (a random 2-layer base model is a poor host for soft prompts: their gain is small but real and seeded)
    model, tok = fresh_lm
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()}
    ppl0 = corpus_perplexity(model, tok, DOCS)["perplexity"]
    cfg = METHODS.get(method)(**({"target_modules": ["q_proj", "v_proj"]} if method == "lora" else {"num_virtual_tokens": 4}))
    res = train_adapter(model, tok, DOCS, cfg, TrainConfig(epochs=20, batch_size=4, micro_batch_size=2, learning_rate=lr, seed=0))
    assert res.steps == 20 * 3 and res.max_weight_delta > 0
    assert 0 < res.trainable_params < res.total_params / 5
    ppl1 = corpus_perplexity(res.model, tok, DOCS)["perplexity"]
    assert ppl1 < max_ratio * ppl0, (method, ppl0, ppl1)
    # the backbone is untouched (LoRA's base_layer weights included)
    base = res.model.get_base_model()
    checked = 0
    for n, p in base.named_parameters():
        key = n.replace(".base_layer", "")
        if key in frozen:
            assert p.shape == frozen[key].shape and bool((p == frozen[key]).all()), n
            checked += 1
    assert checked == len(frozen)  # every backbone weight was found and compared


def test_micro_batching_does_not_change_the_result():
    outs = []
    for micro in (4, 1):
        model, tok = build_tiny_lm(seed=3)
        tok.padding_side = "right"
        res = train_adapter(model, tok, DOCS, METHODS.get("lora")(target_modules=["q_proj"]),
                            TrainConfig(epochs=2, batch_size=4, micro_batch_size=micro, learning_rate=1e-2, seed=5))
        outs.append({n: p.detach().clone() for n, p in res.model.named_parameters() if p.requires_grad})
    for n in outs[0]:
        assert (outs[0][n] - outs[1][n]).abs().max() < 1e-5, n


def test_opacus_per_sample_gradients_match_individual_backprops(fresh_lm):
    """Guards against meta-pytorch/opacus#820-style silent failures: per-sample grads of the LoRA weights under
    Opacus hooks equal the gradients of each document's loss computed alone."""
    import torch
    from opacus import GradSampleModule

    from medsynth.lm import encode_documents, pad_batch, per_sample_nll
    from medsynth.text.adapt.trainer import wrap_model

    model, tok = fresh_lm
    pm = wrap_model(model, tok, METHODS.get("lora")(target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)  # B = 0 at init would make every A-gradient zero
    pm.train()
    ids, _ = encode_documents(tok, CORPUS, 128)
    ref = []
    for one in ids:
        pm.zero_grad()
        x, m = pad_batch([one], tok.pad_token_id)
        per_sample_nll(pm, x, m)[0].mean().backward()
        ref.append({n: p.grad.detach().clone() for n, p in pm.named_parameters() if p.requires_grad})
    pm.zero_grad()
    gsm = GradSampleModule(pm, batch_first=True, loss_reduction="mean", strict=True)
    x, m = pad_batch(ids, tok.pad_token_id)
    per_sample_nll(gsm, x, m)[0].mean().backward()
    checked = 0
    for n, p in pm.named_parameters():
        if p.requires_grad:
            gs = p.grad_sample
            for i in range(len(ids)):
                assert torch.allclose(gs[i], ref[i][n], atol=1e-5, rtol=1e-3), (n, i)
            checked += 1
    assert checked == 8  # 2 layers × (q, v) × (A, B)
    gsm._close()


@pytest.mark.parametrize("method", ["lora", "prefix", "prompt_tuning"])
def test_dp_debits_the_ledger_before_training_and_reports_epsilon(tmp_path, fresh_lm, method):
    model, tok = fresh_lm
    led = BudgetLedger(tmp_path / "budget.sqlite")
    led.create("seeds", epsilon=10.0, delta=1e-3)
    cfg = METHODS.get(method)(**({"target_modules": ["q_proj", "v_proj"]} if method == "lora" else {"num_virtual_tokens": 4}))
    res = train_adapter(model, tok, DOCS, cfg, TrainConfig(epochs=2, batch_size=4, micro_batch_size=2, learning_rate=1e-2),
                        DPConfig(epsilon=4.0, delta=1e-3, max_grad_norm=1.0), ledger=led, budget="seeds", step="adapt")
    d = res.dp
    assert d["epsilon_planned"] <= 4.0 + 0.05 and d["noise_multiplier"] > 0
    assert abs(d["epsilon_spent"] - d["epsilon_planned"]) < 1e-6  # the optimizer's accountant saw exactly the planned steps
    assert res.max_weight_delta > 0
    h = led.history("seeds")
    assert len(h) == 1 and h[0]["status"] == "trained" and abs(h[0]["epsilon"] - d["epsilon_planned"]) < 1e-9
    assert h[0]["accountant"] == "rdp"


def test_dp_over_budget_fails_before_any_training(tmp_path, fresh_lm):
    model, tok = fresh_lm
    before = copy.deepcopy(model.state_dict())
    led = BudgetLedger(tmp_path / "budget.sqlite")
    led.create("small", epsilon=1.0, delta=1e-3)
    with pytest.raises(PrivacyBudgetExceededError, match="Nothing was trained"):
        train_adapter(model, tok, DOCS, METHODS.get("lora")(target_modules=["q_proj"]), TrainConfig(epochs=1, batch_size=4),
                      DPConfig(epsilon=4.0, delta=1e-3), ledger=led, budget="small")
    assert led.history("small") == []
    after = model.state_dict()
    assert all(bool((before[k] == after[k]).all()) for k in before if k in after)


def test_dp_refuses_unsupported_layers_before_debiting(tmp_path, fresh_lm):
    from medsynth.exceptions import RecipeError

    model, tok = fresh_lm
    led = BudgetLedger(tmp_path / "b.sqlite")
    led.create("x", epsilon=10, delta=1e-2)
    with pytest.raises(RecipeError, match=r"embed_tokens.*Nothing was debited"):
        train_adapter(model, tok, DOCS, METHODS.get("lora")(target_modules=["embed_tokens", "q_proj"]), TrainConfig(epochs=1),
                      DPConfig(epsilon=4.0, delta=1e-3), ledger=led, budget="x")
    assert led.history("x") == []


def test_dp_delta_must_be_below_one_over_n(fresh_lm, tmp_path):
    from medsynth.exceptions import RecipeError

    model, tok = fresh_lm
    led = BudgetLedger(tmp_path / "b.sqlite")
    led.create("x", epsilon=10, delta=0.5)
    with pytest.raises(RecipeError, match="not below 1/n"):
        train_adapter(model, tok, DOCS, METHODS.get("lora")(target_modules=["q_proj"]), TrainConfig(epochs=1),
                      DPConfig(epsilon=4.0, delta=0.2), ledger=led, budget="x")


def test_saved_adapter_resolves_verifies_and_loads_in_the_backend(tmp_path, fresh_lm):
    from medsynth.text.backends.base import GenParams
    from medsynth.text.backends.transformers import TransformersBackend

    model, tok = fresh_lm
    model_dir = tmp_path / "base"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    res = train_adapter(model, tok, DOCS, METHODS.get("lora")(target_modules=["q_proj", "v_proj"]),
                        TrainConfig(epochs=8, batch_size=4, learning_rate=3e-2))
    run = tmp_path / "run"
    path, sha = save_adapter(res.model, run / "steps" / "03_adapt" / "adapter", {"method": "lora"})
    p2, man = resolve_adapter("step:adapt", run)
    assert p2 == path and man["adapter_sha256"] == sha and len(sha) == 64
    base = TransformersBackend(model=str(model_dir), dtype="float32")
    ad = TransformersBackend(model=str(model_dir), dtype="float32", adapter="step:adapt", run_dir=str(run))
    assert ad.adapter_sha256 == sha and sha[:12] in ad.model_id and ad.identity != base.identity
    g = GenParams(max_new_tokens=12, temperature=0.0, batch_size=2)
    prompts = ["FINDINGS: The heart", "FINDINGS: Mild"]
    assert [c.text for c in ad.generate(prompts, g)] != [c.text for c in base.generate(prompts, g)]
    with pytest.raises(ModelNotAvailableError, match="no adapter from a step named 'nope'"):
        resolve_adapter("step:nope", run)
    with pytest.raises(ModelNotAvailableError, match="run directory"):
        resolve_adapter("step:adapt", None)
    # a changed byte is refused
    f = path / "adapter_model.safetensors"
    f.write_bytes(f.read_bytes()[:-1] + bytes([f.read_bytes()[-1] ^ 1]))
    with pytest.raises(ModelNotAvailableError, match="does not match"):
        resolve_adapter(str(path))
    man = json.loads((path / "medsynth_adapter.json").read_text())
    assert man["method"] == "lora"


def test_adapter_for_another_base_model_is_refused(tmp_path, fresh_lm):
    from medsynth.text.backends.transformers import TransformersBackend

    model, tok = fresh_lm
    res = train_adapter(model, tok, DOCS, METHODS.get("lora")(target_modules=["q_proj"]), TrainConfig(epochs=1, batch_size=4))
    path, _ = save_adapter(res.model, tmp_path / "adapter", {"base_model_sha256": "a" * 64, "base_model": "other"})
    m2, t2 = build_tiny_lm(seed=3)
    with pytest.raises(ModelNotAvailableError, match="was trained on a model"):
        TransformersBackend(model="tiny", model_obj=m2, tokenizer_obj=t2, model_sha256="b" * 64, adapter=str(path))


def test_render_document_fills_only_known_fields():
    from medsynth.text.adapt import render_document

    d = render_document(" FINDINGS: x {y} IMPRESSION: z ", ["normal"], "Findings list: {labels}\n{text} {other.__class__}")
    # {labels} and {text} are filled (label words, stripped text); braces that are not fields stay literally
    assert d == "Findings list: normal chest\nFINDINGS: x {y} IMPRESSION: z {other.__class__}"


