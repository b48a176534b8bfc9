"""The ``train`` recipe step: a classifier / NER tagger on (synthetic) records, optionally DP-SGD and noise-robust,
evaluated on real held-out records, attacked by membership inference, and saved in the run directory."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..recipe.step import Step, StepConfig, StepPlan
from ..registry import STEPS
from .classifiers import TrainSpec
from .dp import DPConfig
from .robust import RobustConfig

__all__ = ["TrainStep", "TrainConfig"]


class MIAConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nonmembers: str = Field(description="dataset of records from the training distribution that the model never saw")
    shadow_models: int | None = Field(None, ge=0, le=64, description="override the policy's LiRA shadow-model count")


class TrainConfig(StepConfig):
    type: Literal["train"] = "train"
    model: TrainSpec = Field(default_factory=TrainSpec)
    dp: DPConfig | None = Field(None, description="DP-SGD; (ε, δ) is debited from the recipe's privacy.budget before training")
    robust: RobustConfig | None = Field(None, description="noise-robust training for noisy synthetic labels")
    clean: str | None = Field(None, description="dataset of clean real labelled records (robust.reweight / robust.anneal)")
    eval: list[str] = Field(default_factory=list, description="real held-out datasets to evaluate on (metrics in the report)")
    mia: MIAConfig | None = Field(None, description="attack the trained model with membership inference (policy section membership_inference)")
    where: dict[str, Any] | None = Field(None, description="train only on input records whose meta matches, e.g. {split: train}")
    on_mia_fail: Literal["stop", "report"] = Field("stop", description="stop: a failing MIA gate raises AuditFailedError (the model is kept in quarantine/); report: record the verdict")


def _match(r: Any, where: dict[str, Any] | None) -> bool:
    if not where:
        return True
    return all((r.meta or {}).get(k) == v or (isinstance(v, list) and (r.meta or {}).get(k) in v) for k, v in where.items())


@STEPS.register("train")
class TrainStep(Step):
    """Trains ``model`` on the input records; writes the eval records with predictions; saves ``model/``."""

    type = "train"
    Config = TrainConfig
    version = "1"

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c: TrainConfig = self.config  # type: ignore[assignment]
        probs: list[tuple[str, str]] = []
        if c.robust and c.robust.needs_clean() and not c.clean:
            probs.append(("clean", f"robust training ({c.robust.describe()}) needs `clean:` — a dataset of real labelled records"))
        if c.dp is not None and c.robust and c.robust.needs_weights():
            probs.append(("robust", "only `label_smoothing` combines with `dp` (per-sample weights change a record's sensitivity)"))
        if c.dp is not None:
            budget = c.dp.budget or (recipe.config.privacy.budget if recipe is not None else None)
            if not budget:
                probs.append(("dp", "DP training debits a privacy budget: set `privacy.budget` in the recipe (create it with "
                              "`medsynth budget create NAME --epsilon E --delta D`)"))
            else:
                from ..exceptions import PrivacyBudgetExceededError
                from ..recipe.ledger import BudgetLedger, BudgetNotFoundError

                try:
                    BudgetLedger().check(budget, c.dp.epsilon, c.dp.delta)
                except BudgetNotFoundError as e:
                    probs.append(("dp", str(e)))
                except PrivacyBudgetExceededError as e:
                    probs.append(("dp.epsilon", str(e)))
        return probs

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c: TrainConfig = self.config  # type: ignore[assignment]
        n = next(iter(input_sizes.values()), None)
        budget = c.dp.budget if c.dp else None
        if c.dp and not budget and self.recipe is not None:
            budget = self.recipe.config.privacy.budget
        return StepPlan(records_in=n, records_out=None, epsilon=c.dp.epsilon if c.dp else None,
                        delta=c.dp.delta if c.dp else None, budget=budget,
                        notes=[f"{c.model.task} model, {c.model.epochs} epochs" + (" with DP-SGD" if c.dp else "")])

    def run(self, ctx: Any) -> None:
        import hashlib
        import shutil

        from ..audit.mia import MembershipInferenceAudit
        from ..exceptions import AuditFailedError, RecipeError
        from .classifiers import evaluate_model, featurize, make_schema, train_features

        c: TrainConfig = self.config  # type: ignore[assignment]
        recs = [r for r in ctx.input() if _match(r, c.where)]
        if not recs:
            raise RecipeError(f"step '{ctx.step_name}': no training records (input empty or `where` matched nothing).")
        spec = c.model
        sch = make_schema(recs, spec)
        with ctx.progress(None, f"{ctx.step_name}: features", unit="sets"):
            feats = featurize(recs, sch)
            clean = featurize([r for r in ctx.dataset(c.clean) if r.labels or r.spans or r.values], sch) if c.clean else None
        ledger, budget = None, None
        if c.dp is not None:
            from ..recipe.ledger import BudgetLedger

            ledger = BudgetLedger()
            budget = c.dp.budget or (ctx.recipe.config.privacy.budget if ctx.recipe else None)
        bar = ctx.progress(spec.epochs, f"{ctx.step_name}: epochs", unit="epochs")
        with bar:
            model = train_features(feats, sch, spec, dp=c.dp, robust=c.robust, clean=clean, seed=ctx.seed, ledger=ledger,
                                   budget=budget, run_id=ctx.run_id, step=ctx.step_name,
                                   on_epoch=lambda ep, m: bar.advance(1))
        rep = model.report
        ctx.add_figure("train_records", len(recs), "records the model was trained on (input after `where`)")
        ctx.add_figure("epoch_seconds_mean", round(sum(rep.epoch_seconds) / len(rep.epoch_seconds), 4),
                       "wall-clock seconds per training epoch (mean; feature extraction excluded)")
        ctx.add_figure("final_train_loss", round(rep.losses[-1], 5), "mean per-record training loss of the last epoch")
        if c.robust:
            ctx.add_figure("robust_training", c.robust.describe(), "noise-robust training configured on this step")
        if rep.dp:
            d = rep.dp
            ctx.add_figure("dp_epsilon_rdp", round(d.epsilon_rdp, 4), d.how())
            if d.epsilon_prv is not None:
                ctx.add_figure("dp_epsilon_prv", round(d.epsilon_prv, 4), "same training, ε by Opacus' PRV accountant (tighter)")
            ctx.add_figure("dp_delta", d.delta, "δ of the guarantee")
            ctx.add_figure("dp_budget_debit", {"budget": d.budget, "epsilon": d.epsilon_target, "delta": d.delta, "debit_id": d.debit_id},
                           "debited from the ledger before training (basic composition across debits)")
            if ledger is not None and d.budget:
                b = ledger.get(d.budget)
                ctx.add_figure("dp_budget_left", {"epsilon": round(b.epsilon_left, 4), "delta": b.delta_left},
                               f"budget '{b.name}' after this step (ledger {ledger.path.name})")
            ctx.add_figure("dp_guards", rep.guards, "post-training checks: trainable weights changed, frozen ones did not, "
                           "per-sample gradients present")
            ctx.add_section("dp_note", {"preprocessing": "feature statistics (standardisation, category lists, label set) are "
                                        "taken from the training records and are not covered by the DP guarantee; frozen "
                                        "pretrained encoders (MiniLM) never see gradients"})
        out = []
        for name in c.eval:
            ev = [r for r in ctx.dataset(name) if r.labels or r.spans or r.values]
            if not ev:
                continue
            ef = featurize(ev, sch)
            metrics = evaluate_model(model, feats=ef)
            for k, v in metrics.items():
                ctx.add_figure(f"eval.{name}.{k}", round(v, 4) if isinstance(v, float) else v,
                               f"{k} of the trained model on the {len(ev)} records of '{name}' (never used for training or tuning)")
            if sch.task != "ner":
                for r, pl in zip(ev, model.predict_labels(ef), strict=True):
                    rr = r.model_copy(deep=True)
                    rr.scores[f"{ctx.step_name}.predicted"] = pl
                    out.append(rr)
        # membership inference against this model
        mia_failed = False
        if c.mia is not None:
            from ..audit.policy import load_policy

            pol_path = ctx.recipe.config.privacy.policy if ctx.recipe else None
            policy = load_policy(ctx.recipe.resolve_path(pol_path) if (ctx.recipe and pol_path) else None)
            ap = policy.audit_policy("membership_inference")
            if c.mia.shadow_models is not None:
                ap = ap.model_copy(update={"shadow_models": c.mia.shadow_models})
            non = [r for r in ctx.dataset(c.mia.nonmembers) if r.labels or r.spans or r.values]
            nf = featurize(non, sch)

            def train_fn(f: Any, seed: int) -> Any:
                return train_features(f, sch, spec, dp=c.dp, robust=None, seed=seed)

            res = MembershipInferenceAudit(ap).run([], recs, non, trained_model=model, member_features=feats,
                                                   nonmember_features=nf, train_fn=train_fn, seed=ctx.seed)
            for f in res.figures:
                ctx.add_figure(f["name"], f["value"], f["how"])
            for k, v in res.sections.items():
                ctx.add_section(k, v)
            ctx.add_figure("membership_inference.verdict", res.verdict, "; ".join(res.release_reasons) or "within the policy")
            mia_failed = res.verdict == "fail"
        mdir = ctx.step_dir / ("model" if not (mia_failed and c.on_mia_fail == "stop") else "model.quarantined")
        if mdir.exists():
            shutil.rmtree(mdir)
        model.save(mdir)
        sha = hashlib.sha256((mdir / "model.pt").read_bytes()).hexdigest()
        ctx.add_model(f"{ctx.step_name}.model", sha)
        ctx.add_artifact(mdir / "model.pt")
        ctx.write_output(out)
        if mia_failed and c.on_mia_fail == "stop":
            raise AuditFailedError(f"step '{ctx.step_name}': the trained model fails the membership-inference gate "
                                   f"({'; '.join(res.release_reasons)}); it is kept as model.quarantined/, not released. "
                                   "Train with `dp:` or more data, or set `on_mia_fail: report`.")
