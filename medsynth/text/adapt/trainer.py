"""Parameter-efficient adaptation of the generator (peft) on scrubbed seed records, optionally with DP-SGD (Opacus).

The private records become causal-LM *documents* (``template``, default ``"Findings list: {labels}\\n{text}"``, the
same block format the ``generate`` step's few-shot prompts use), and only a small set of parameters is trained:
LoRA matrices (lora.py), prefix key/values (prefix.py) or soft prompt embeddings (prompt_tuning.py). The backbone
stays frozen. Front door::

    from medsynth.text.adapt import train_adapter, TrainConfig, DPConfig, METHODS
    result = train_adapter(model, tokenizer, documents, METHODS.get("lora")(), TrainConfig(epochs=3),
                           dp=DPConfig(epsilon=8.0, delta=1e-5), ledger=BudgetLedger(), budget="iu_reports")
    save_adapter(result.model, out_dir / "adapter", manifest={...})

DP-SGD: Opacus ``GradSampleModule`` (hooks mode) computes per-sample gradients of the *trainable* modules only —
``nn.Linear`` (LoRA A/B) and ``nn.Embedding`` (prefix encoder, prompt embedding) — so the frozen Gemma layers Opacus
has no grad sampler for (``Gemma3RMSNorm``, rotary embeddings, SDPA attention) never need one. The noise multiplier
is calibrated by the DP core (:mod:`medsynth.dp`, shared with every DP trainer) for the target ε over the planned
steps (Poisson sampling, rate 1/⌈N/batch⌉), the planned ε
is **debited from the ledger before the first step**, and the accountant's ε after training is reported next to it.
A Poisson batch that happens to be empty still takes a noised, accounted step (Opacus would otherwise skip the noise).
Because of a known silent failure of Opacus + peft (meta-pytorch/opacus#820: hooks left on stale parameters, the
adapter never updates while ε keeps accumulating) every run checks that the trainable weights actually moved.

The settings are in :mod:`.config`, the adapter folder in :mod:`.files`.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ...dp import plan_dp as core_plan_dp
from ...exceptions import MedsynthError, RecipeError
from ...lm import encode_documents, pad_batch, per_sample_nll
from .config import DPConfig, MethodConfig, TrainConfig, TrainResult

__all__ = ["train_adapter", "wrap_model", "plan_dp"]


def _seeded(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def plan_dp(dp: DPConfig, n_docs: int, train: TrainConfig) -> dict[str, Any]:
    """The core's noise calibration (:func:`medsynth.dp.plan_dp`: Poisson rate 1/⌈N/batch⌉, the smallest σ whose ε
    is at most the target) for this adapter run, as the report's ``dp`` figures."""
    plan = core_plan_dp(dp, n_docs, train.batch_size, train.epochs)
    return {"noise_multiplier": plan.noise_multiplier, "sample_rate": plan.sample_rate, "steps": plan.steps,
            "steps_per_epoch": plan.steps // max(1, train.epochs), "delta": plan.delta,
            "epsilon_planned": plan.epsilon_planned[dp.accountant], "epsilon_by_accountant": plan.epsilon_planned,
            "epsilon_target": dp.epsilon, "max_grad_norm": dp.max_grad_norm, "accountant": dp.accountant}


def wrap_model(model: Any, tokenizer: Any, method: MethodConfig) -> Any:
    try:
        from peft import get_peft_model
    except ImportError as e:  # pragma: no cover
        from ...exceptions import MissingDependencyError

        raise MissingDependencyError("peft", purpose="parameter-efficient adaptation") from e
    pm = get_peft_model(model, method.peft_config(model, tokenizer))
    method.after_wrap(pm, tokenizer)
    return pm


def train_adapter(model: Any, tokenizer: Any, documents: list[str], method: MethodConfig, train: TrainConfig,
                  dp: DPConfig | None = None, *, ledger: Any = None, budget: str | None = None, run_id: str = "",
                  step: str = "", progress: Any = None) -> TrainResult:
    """Wrap ``model`` with ``method`` and train the adapter on ``documents`` (causal LM). With ``dp``, the planned ε
    is debited from ``ledger``/``budget`` before training (PrivacyBudgetExceededError → nothing is trained)."""
    import torch

    if not documents:
        raise RecipeError("adapt: no training documents (the input dataset has no records with text).")
    _seeded(train.seed)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    pad = tokenizer.pad_token_id
    ids, truncated = encode_documents(tokenizer, documents, train.max_length)
    # train in fp32 adapters on whatever dtype the backbone has (peft keeps adapter weights in fp32)
    pm = wrap_model(model, tokenizer, method)
    pm.train()
    params = [p for p in pm.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in pm.parameters())
    before = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=train.learning_rate, weight_decay=train.weight_decay)
    t0 = time.time()
    losses: list[float] = []
    dp_info: dict[str, Any] | None = None
    debit_id: int | None = None

    def run_training() -> int:
        nonlocal opt
        n_steps = 0
        if dp is None:
            g = torch.Generator().manual_seed(train.seed)
            for _ep in range(train.epochs):
                order = torch.randperm(len(ids), generator=g).tolist()
                for b0 in range(0, len(order), train.batch_size):
                    batch = [ids[i] for i in order[b0 : b0 + train.batch_size]]
                    tot = 0.0
                    for m0 in range(0, len(batch), train.micro_batch_size):
                        x, am = pad_batch(batch[m0 : m0 + train.micro_batch_size], pad)
                        nll, _ = per_sample_nll(pm, x, am)
                        loss = nll.sum() / len(batch)
                        loss.backward()
                        tot += float(loss.detach())
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    losses.append(tot)
                    n_steps += 1
                    if progress is not None:
                        progress(n_steps)
            return n_steps
        return _train_dp(pm, opt, ids, pad, train, dp_info, losses, progress)

    if dp is not None:
        _check_dp_supported(pm)  # before the debit: an unsupported layer must not cost ε
        dp_info = plan_dp(dp, len(ids), train)
        if ledger is None or not budget:
            raise RecipeError("DP adaptation needs a privacy budget to debit: set `privacy.budget` in the recipe (and "
                              "create it with `medsynth budget create NAME --epsilon E --delta D`) or `dp.budget`.")
        with ledger.spend(budget, dp_info["epsilon_planned"], dp_info["delta"], run_id=run_id, step=step,
                          purpose=f"DP-SGD {method.type} adapter on {len(ids)} documents", accountant=dp.accountant) as debit_id:
            n_steps = run_training()
    else:
        n_steps = run_training()
    pm.eval()
    delta_w = max(float((p.detach() - b).abs().max()) for p, b in zip(params, before, strict=True)) if params else 0.0
    if n_steps and delta_w == 0.0:
        raise MedsynthError(f"adapt: {n_steps} optimizer steps left every trainable weight unchanged (max |Δ| = 0). "
                            "The adapter would be the base model; this is the silent Opacus+peft failure of "
                            "meta-pytorch/opacus#820 or a learning rate of 0. Nothing was saved.")
    return TrainResult(model=pm, method=method.type, steps=n_steps, seconds=round(time.time() - t0, 2), losses=losses,
                       trainable_params=n_train, total_params=n_total, n_documents=len(ids), truncated=truncated,
                       max_weight_delta=delta_w, dp=dp_info, debit_id=debit_id)


def _check_dp_supported(pm: Any) -> None:
    """Every trainable parameter must belong to a module type Opacus computes per-sample gradients for (hooks)."""
    from opacus import GradSampleModule

    supported = set(GradSampleModule.GRAD_SAMPLERS)
    bad = []
    for name, mod in pm.named_modules():
        if any(p.requires_grad for p in mod.parameters(recurse=False)) and type(mod) not in supported:
            bad.append(f"{name.removeprefix('base_model.model.')} ({type(mod).__name__})")
    if bad:
        raise RecipeError(f"DP-SGD cannot compute per-sample gradients for {len(bad)} trainable module(s), e.g. {bad[0]}: Opacus "
                          f"supports {', '.join(sorted(t.__name__ for t in supported))}. Adapt only linear projections "
                          "(LoRA target_modules such as q_proj/v_proj, not the embedding), or train without dp. Nothing was debited.")


def _train_dp(pm: Any, opt: Any, ids: list[list[int]], pad: int, train: TrainConfig, dp_info: dict[str, Any],
              losses: list[float], progress: Any) -> int:
    """DP-SGD with Opacus: Poisson sampling at rate q, per-sample clipping at C, Gaussian noise σ·C per logical step;
    physical micro-batches accumulate clipped per-sample gradients into one noised step (BatchMemoryManager logic)."""
    import torch
    from opacus import GradSampleModule
    from opacus.accountants import create_accountant
    from opacus.optimizers import DPOptimizer

    gsm = GradSampleModule(pm, batch_first=True, loss_reduction="mean", strict=True)
    q = dp_info["sample_rate"]
    expected = max(1, round(q * len(ids)))
    dpo = DPOptimizer(opt, noise_multiplier=dp_info["noise_multiplier"], max_grad_norm=dp_info["max_grad_norm"],
                      expected_batch_size=expected, loss_reduction="mean")
    acct = create_accountant(dp_info["accountant"])
    dpo.attach_step_hook(acct.get_optimizer_hook_fn(sample_rate=q))
    gen = torch.Generator().manual_seed(train.seed + 1)  # Poisson sampling; the noise uses torch's seeded default RNG
    n_steps = 0
    for _step in range(dp_info["steps"]):
        chosen = (torch.rand(len(ids), generator=gen) < q).nonzero().flatten().tolist()
        if not chosen:
            # empty Poisson batch: still take a noised, accounted step (a zero-weight dummy row gives zero per-sample grads)
            x, am = pad_batch([[pad, pad]], pad)
            nll, _ = per_sample_nll(gsm, x, am)
            (nll * 0.0).sum().backward()
            dpo.step()
            dpo.zero_grad(set_to_none=True)
            n_steps += 1
            losses.append(float("nan"))
            continue
        batch = [ids[i] for i in chosen]
        chunks = [batch[m0 : m0 + train.micro_batch_size] for m0 in range(0, len(batch), train.micro_batch_size)]
        tot = 0.0
        for k, ch in enumerate(chunks):
            x, am = pad_batch(ch, pad)
            nll, _ = per_sample_nll(gsm, x, am)
            loss = nll.mean()
            loss.backward()
            tot += float(loss.detach()) * len(ch) / len(batch)
            if k < len(chunks) - 1:
                dpo.signal_skip_step(do_skip=True)
                dpo.step()  # clips and accumulates this micro-batch, no noise yet
                dpo.zero_grad(set_to_none=True)  # drops grad_sample, keeps the accumulated clipped sum
        dpo.step()
        dpo.zero_grad(set_to_none=True)
        losses.append(tot)
        n_steps += 1
        if progress is not None:
            progress(n_steps)
    dp_info["epsilon_spent"] = float(acct.get_epsilon(dp_info["delta"]))
    dp_info["steps_taken"] = n_steps
    gsm._close()
    return n_steps


# ---------------------------------------------------------------------------------------------------------------
# adapter folders
