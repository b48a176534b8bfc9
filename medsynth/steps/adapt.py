"""The ``adapt`` recipe step: train a parameter-efficient adapter of the generator on scrubbed private records.

Recipe::

    - type: adapt
      name: adapt
      input: seeds                      # scrubbed private records (text + labels) = the training documents
      model: gemma3-270m
      method: {type: lora, r: 8, alpha: 16}          # or {type: prefix, num_virtual_tokens: 16} / {type: prompt_tuning}
      train: {epochs: 3, batch_size: 8, learning_rate: 2.0e-4}
      canaries: {n: 8, repeats: [1, 4, 16], digits: 6}   # inserted into the training documents before training
      dp: {epsilon: 8.0, delta: 1.0e-5}                 # optional DP-SGD; debits privacy.budget before training
      holdout: holdout                  # real records NOT trained on: perplexity base vs adapted

Writes, in the step folder:

* ``adapter/`` — the peft adapter + ``medsynth_adapter.json`` (sha256s, base model sha256, ε, canaries, perplexities).
* main output ``<name>``: the input records unchanged except ``meta["adapted_by"] = {step, adapter_sha256}`` (so the
  datasets — and the cache keys of steps reading them — change with the adapter). Canaries are NOT in it.
* ``<name>_train``: the documents trained on — private records and canaries, each once (canaries carry
  ``meta["canary"]``). Give it to the audit step as ``private:`` so that the copy audits compare against everything
  the model saw and ``canary_exposure`` finds the canaries.
* ``<name>_canaries``: the canary records alone.

Using the adapter in later steps (fields of the generate and audit steps): ``adapter: step:<name>`` with the same
``model:`` — resolved inside the run directory by :func:`medsynth.text.adapt.files.resolve_adapter`, verified against
its sha256s; the TransformersBackend needs ``run_dir=ctx.run_dir`` for that (or give the folder's path).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from ..recipe.step import Step, StepConfig, StepPlan, register_step
from ..text.adapt.config import DEFAULT_TEMPLATE, DPConfig, TrainConfig
from ..text.adapt.lora import LoraMethod
from ..text.adapt.prefix import PrefixMethod
from ..text.adapt.prompt_tuning import PromptTuningMethod

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["AdaptStep", "AdaptConfig", "CanaryConfig", "run_adaptation"]

Method = Annotated[LoraMethod | PrefixMethod | PromptTuningMethod, Field(discriminator="type")]


class CanaryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(8, ge=1, le=1000, description="canary records inserted into the training documents")
    repeats: int | list[int] = Field(1, description="times each canary is inserted (a list is cycled over the canaries)")
    digits: int = Field(6, ge=1, le=18, description="secret length: the randomness space has |R| = 10**digits secrets")


class AdaptConfig(StepConfig):
    type: Literal["adapt"] = "adapt"
    model: str = Field("gemma3-270m", description="registry name (`medsynth models list`) or a local HF folder")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="backbone dtype (adapter weights train in fp32)")
    method: Method = Field(default_factory=LoraMethod)
    train: TrainConfig = Field(default_factory=TrainConfig)
    template: str = Field(DEFAULT_TEMPLATE, description="document format; {labels} and {text} are filled in (nothing else is evaluated)")
    canaries: CanaryConfig | None = Field(None, description="insert canaries for the canary_exposure audit")
    dp: DPConfig | None = Field(None, description="DP-SGD (Opacus); ε is debited from the ledger before training")
    holdout: str | None = Field(None, validation_alias=AliasChoices("holdout", "heldout"),
                                description="dataset of real records not trained on (perplexity base vs adapted); `heldout` is accepted too")
    holdout_n: int = Field(100, ge=1, validation_alias=AliasChoices("holdout_n", "heldout_n"), description="held-out records scored (seeded sample)")


def _base(c: AdaptConfig) -> str:
    return c.output or c.name or "adapt"


def run_adaptation(records: list[Any], c: AdaptConfig, out_dir: Any, *, seed: int = 0, holdout: list[Any] | None = None,
                   ledger: Any = None, budget: str | None = None, run_id: str = "", step: str = "adapt",
                   progress: Any = None, model_obj: Any = None, tokenizer_obj: Any = None, model_sha256: str | None = None) -> dict[str, Any]:
    """Train, measure and save an adapter; returns the summary (also written into the adapter manifest)."""
    import random
    from pathlib import Path

    import torch

    from ..audit.canary import make_canaries
    from ..exceptions import RecipeError
    from ..lm import corpus_perplexity
    from ..text.adapt import render_document, save_adapter, train_adapter

    train_recs = [r for r in records if r.text]
    if not train_recs:
        raise RecipeError(f"Step '{step}': the input dataset has no records with text to adapt on.")
    canaries = []
    if c.canaries:
        canaries = make_canaries(c.canaries.n, c.canaries.repeats, c.canaries.digits, seed=seed, template=c.template)
    docs = [render_document(r.text, r.labels, c.template) for r in train_recs]
    for cr in canaries:
        docs += [render_document(cr.text, cr.labels, c.template)] * int(cr.meta["canary"]["repeats"])
    if model_obj is None:
        from ..text.models import load_model

        model, tok, info = load_model(c.model, dtype=c.dtype)
        model_sha256 = info["model_sha256"]
    else:
        model, tok = model_obj, tokenizer_obj
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    summary: dict[str, Any] = {"base_model": c.model, "base_model_sha256": model_sha256, "method": c.method.type,
                               "method_config": c.method.model_dump(), "train_config": c.train.model_dump(), "template": c.template,
                               "n_private_documents": len(train_recs), "n_training_documents": len(docs),
                               "canaries": [{"id": cr.id, "repeats": cr.meta["canary"]["repeats"]} for cr in canaries],
                               "canary_space_size": canaries[0].meta["canary"]["space_size"] if canaries else None}
    held_docs: list[str] = []
    if holdout:
        hs = [r for r in holdout if r.text]
        hs = random.Random(seed).sample(hs, min(c.holdout_n, len(hs)))
        held_docs = [render_document(r.text, r.labels, c.template) for r in hs]
        summary["holdout_base"] = corpus_perplexity(model, tok, held_docs, max_length=c.train.max_length)
    priv_docs = docs[: len(train_recs)]
    summary["train_base"] = corpus_perplexity(model, tok, priv_docs, max_length=c.train.max_length)
    torch.manual_seed(c.train.seed + seed)
    tc = c.train.model_copy(update={"seed": c.train.seed + seed})
    res = train_adapter(model, tok, docs, c.method, tc, c.dp, ledger=ledger, budget=budget, run_id=run_id, step=step, progress=progress)
    summary.update(steps=res.steps, train_seconds=res.seconds, trainable_params=res.trainable_params, total_params=res.total_params,
                   truncated_documents=res.truncated, final_loss=next((x for x in reversed(res.losses) if x == x), None),
                   max_weight_delta=res.max_weight_delta, dp=res.dp, debit_id=res.debit_id,
                   losses=[round(x, 4) if x == x else None for x in res.losses])
    if held_docs:
        summary["holdout_adapted"] = corpus_perplexity(res.model, tok, held_docs, max_length=c.train.max_length)
    summary["train_adapted"] = corpus_perplexity(res.model, tok, priv_docs, max_length=c.train.max_length)
    path, sha = save_adapter(res.model, Path(out_dir) / "adapter", manifest=summary)
    summary.update(adapter_path=str(path), adapter_sha256=sha)
    summary["_canary_records"] = canaries
    summary["_model"] = res.model
    return summary


@register_step
class AdaptStep(Step[AdaptConfig]):
    """Parameter-efficient adaptation (LoRA / prefix / prompt tuning) of the generator, optionally DP, with canaries."""

    Config = AdaptConfig
    version = "1"

    def extra_outputs(self) -> list[str]:
        b = _base(self.config)
        return [f"{b}_train", f"{b}_canaries"]

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        from pathlib import Path

        from ..registry import MODELS

        c = self.config
        probs = []
        if c.model not in MODELS and not (Path(c.model).expanduser() / "config.json").exists():
            probs.append(("model", f"unknown model '{c.model}'; registered: {', '.join(MODELS.names())}, or give a local HF folder with config.json"))
        if c.dp is not None and not (c.dp.budget or recipe.config.privacy.budget):
            probs.append(("dp", "DP adaptation debits a privacy budget: set `privacy.budget` in the recipe or `dp.budget` "
                                "(create it with `medsynth budget create NAME --epsilon E --delta D`)"))
        if c.holdout:
            produced = {o for _ins, outs in recipe.wiring() for o in outs}
            if c.holdout not in produced:
                probs.append(("holdout", f"no step writes a dataset named '{c.holdout}'"))
        if "{text}" not in c.template:
            probs.append(("template", "the template must contain {text}"))
        if c.method.type == "prefix" and c.dp is not None and c.method.prefix_projection:
            probs.append(("method.prefix_projection", "DP prefix tuning supports prefix_projection: false only (per-sample "
                                                      "gradients of the projection MLP are not checked); set it to false"))
        return probs

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c = self.config
        n = next(iter(input_sizes.values()), None)
        docs = (n or 0) + (sum(c.canaries.repeats if isinstance(c.canaries.repeats, int) else
                               [c.canaries.repeats[i % len(c.canaries.repeats)] for i in range(c.canaries.n)]) if c.canaries else 0)
        steps = c.train.epochs * math.ceil(docs / c.train.batch_size) if docs else None
        return StepPlan(records_in=n, records_out=n, epsilon=c.dp.epsilon if c.dp else None,
                        delta=c.dp.delta if c.dp else None, budget=c.dp.budget if c.dp else None,
                        est_seconds=(steps or 0) * c.train.batch_size * 2.5 + 60,
                        notes=[f"{c.method.type} adapter on {docs} documents, ~{steps} optimizer steps"
                               + (f"; DP ε ≤ {c.dp.epsilon:g} debited before training" if c.dp else "")])

    def cache_key_extra(self) -> dict[str, Any]:
        c = self.config
        try:
            from ..text.models import model_info

            return {"model_sha256": model_info(c.model).get("model_sha256")}
        except Exception:  # noqa: BLE001
            return {}

    def run(self, ctx: StepContext) -> None:
        from pathlib import Path

        from ..ledger import BudgetLedger

        c = self.config
        recs = ctx.input()
        holdout = ctx.dataset(c.holdout) if c.holdout else None
        ledger = budget = None
        if c.dp is not None:
            budget = c.dp.budget or (ctx.recipe.config.privacy.budget if ctx.recipe else None)
            ledger = BudgetLedger(Path(ctx.home) / "budget.sqlite")
        n_docs = len([r for r in recs if r.text])
        with ctx.progress(None, f"adapt ({c.method.type})", unit="steps") as bar:
            summary = run_adaptation(recs, c, ctx.step_dir, seed=ctx.seed, holdout=holdout, ledger=ledger, budget=budget,
                                     run_id=ctx.run_id, step=ctx.step_name, progress=lambda _n: bar.advance(1))
        canaries = summary.pop("_canary_records")
        summary.pop("_model")
        sha = summary["adapter_sha256"]
        rel = Path(summary["adapter_path"]).relative_to(ctx.step_dir)
        for p in sorted(Path(summary["adapter_path"]).iterdir()):
            ctx.add_artifact(p)
        ctx.add_model(f"{c.model}+{c.method.type}-adapter", sha)
        out = []
        for r in recs:
            rr = r.model_copy(deep=True)
            rr.meta["adapted_by"] = {"step": ctx.step_name, "adapter_sha256": sha}
            out.append(rr)
        ctx.write_output(out)
        train_set = [r for r in recs if r.text] + canaries
        b = _base(c)
        ctx.write_output(train_set, name=f"{b}_train")
        ctx.write_output(canaries, name=f"{b}_canaries")
        how_t = f"{c.method.type} on {summary['n_training_documents']} documents ({n_docs} private + canaries×repeats), template-rendered, {summary['steps']} steps"
        ctx.add_figure("adapter_sha256", sha, f"sha256 over the adapter files' sha256s ({rel}/medsynth_adapter.json)")
        ctx.add_figure("trainable_params", summary["trainable_params"], f"parameters trained of {summary['total_params']} ({c.method.type})")
        ctx.add_figure("train_seconds", summary["train_seconds"], how_t + " (wall clock, shared CPU)")
        ctx.add_figure("final_loss", round(summary["final_loss"], 4) if summary["final_loss"] is not None else None, "mean token NLL of the last batch")
        ctx.add_figure("train_perplexity_base", round(summary["train_base"]["perplexity"], 3), "token perplexity of the private training documents under the base model")
        ctx.add_figure("train_perplexity_adapted", round(summary["train_adapted"]["perplexity"], 3), "the same documents under the adapted model (a large gap to held-out = memorisation)")
        if "holdout_base" in summary:
            hb, ha = summary["holdout_base"], summary["holdout_adapted"]
            how_h = f"token perplexity exp(ΣNLL/Σtokens) of {hb['documents']} held-out real records ('{c.holdout}', not trained on), same template"
            ctx.add_figure("holdout_perplexity_base", round(hb["perplexity"], 3), how_h + ", base model")
            ctx.add_figure("holdout_perplexity_adapted", round(ha["perplexity"], 3), how_h + ", adapted model")
        if summary.get("dp"):
            d = summary["dp"]
            ctx.add_figure("dp_epsilon", round(d["epsilon_planned"], 4), f"{d['accountant']} accountant ε for σ={d['noise_multiplier']:.3f}, q={d['sample_rate']:.3f}, "
                           f"{d['steps']} steps, δ={d['delta']:g}; debited from budget '{budget}' before training (debit {summary['debit_id']})")
            ctx.add_figure("dp_epsilon_accountant_after", round(d.get("epsilon_spent", float("nan")), 4), "ε of the accountant attached to the optimizer after training")
        if canaries and c.canaries is not None:
            ctx.add_figure("canaries_inserted", len(canaries), f"canary records (|R| = 10^{c.canaries.digits} secrets each), repeats {c.canaries.repeats}")
        losses = summary.pop("losses")
        ctx.add_section("adapter", summary | {"adapter_path": str(rel)})
        pts = [(i + 1, v) for i, v in enumerate(losses) if v is not None]
        if pts:
            ctx.add_section("loss_curve", {"plot": {"kind": "lines", "title": "Adapter training loss", "xlabel": "optimizer step",
                                                    "ylabel": "mean token NLL", "series": {c.method.type: {"x": [p[0] for p in pts], "y": [p[1] for p in pts]}}},
                                           "caption": "Training loss of the adapter per optimizer step" + (" (DP-SGD: noised steps)" if c.dp else "") + "."})
