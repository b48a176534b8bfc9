"""The ``audit`` recipe step: the privacy gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ..audit.base import release_verdict
from ..exceptions import AuditFailedError
from ..paths import find_step_dir
from ..recipe.step import Step, StepConfig, StepPlan, register_step

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["AuditStep", "ImageAuditStep", "run_gate", "recipe_policy"]


class AuditConfig(StepConfig):
    type: Literal["audit"] = "audit"
    private: str = Field("private", description="dataset of private records the synthetic ones were derived from")
    holdout: str | None = Field("holdout", description="dataset of real records NOT used for generation (calibrates DCR and copy thresholds)")
    audits: list[str] | None = Field(None, description="audits to run (default: every audit in the policy)")
    policy: str | None = Field(None, description="policy file (default: the recipe's privacy.policy)")
    phi_from: str | None = Field(None, description="name of a scrub step whose phi_strings.jsonl lists the private PHI (else the audit scans the private set)")
    model: str | None = Field(None, description="generator to probe for prefix extraction (registry name or HF folder); needed by the prefix_extraction audit")
    adapter: str | None = Field(None, description="PEFT adapter folder loaded on `model` for prefix extraction")
    on_fail: Literal["stop", "quarantine"] = Field("stop", description="stop: a failing release raises AuditFailedError; quarantine: flagged records are quarantined and the run continues")


@register_step
class AuditStep(Step[AuditConfig]):
    Config = AuditConfig

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        from ..registry import AUDITS

        c = self.config
        probs = _policy_problems(recipe, c.policy)
        for a in c.audits or []:
            if a not in AUDITS:
                probs.append(("audits", f"unknown audit '{a}'; known: {', '.join(AUDITS.names())}"))
        names = recipe.names
        if c.phi_from and c.phi_from not in names:
            probs.append(("phi_from", f"no step named '{c.phi_from}' in this recipe"))
        return probs

    def rate_key(self) -> dict[str, Any]:
        c = self.config
        return {"type": "audit", "audits": sorted(c.audits or []), "model": c.model, "private": c.private, "holdout": c.holdout}

    def cache_key_extra(self) -> dict[str, Any]:
        return _policy_key(self.recipe, self.config.policy)

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = next(iter(input_sizes.values()), None)
        return StepPlan(records_in=n, records_out=n, notes=["flagged records are quarantined; the release verdict gates the run"])

    def run(self, ctx: StepContext) -> None:
        c = self.config
        policy, pol_path = recipe_policy(ctx.recipe, c.policy)
        context: dict[str, Any] = {}
        if c.phi_from:
            from ..scrub.fields import load_phi_strings

            phi_dir = find_step_dir(ctx.run_dir, c.phi_from)
            if phi_dir is not None:
                # the generator only saw the scrub step's output, so its PHI list is what could be replayed
                context["phi_strings"] = load_phi_strings(phi_dir, with_labels=True)
        names = c.audits or policy.default_audits()
        if c.model and "prefix_extraction" in names:
            from ..text.backends.transformers import TransformersBackend

            context["backend"] = TransformersBackend(model=c.model, adapter=c.adapter)
        run_gate(ctx, policy, pol_path, names, policy.required(model_given=bool(c.model)), c.private, c.holdout, context, c.on_fail, self.type)


def recipe_policy(recipe: Any, path: str | None) -> tuple[Any, str | None]:
    """The policy a step uses — its own ``policy:`` else the recipe's ``privacy.policy`` (resolved against the recipe),
    else the default — and the path as given."""
    from ..audit.policy import load_policy

    pol_path = path or (recipe.config.privacy.policy if recipe is not None else None)
    return load_policy(recipe.resolve_path(pol_path) if recipe is not None and pol_path else pol_path), pol_path


def _policy_problems(recipe: Any, path: str | None) -> list[tuple[str, str]]:
    try:
        recipe_policy(recipe, path)
    except Exception as e:  # noqa: BLE001 - any unreadable policy is a check problem with its first line
        return [("policy", str(e).splitlines()[0])]
    return []


def _policy_key(recipe: Any, path: str | None) -> dict[str, Any]:
    """The policy's content as part of the gate's cache key: a changed limit, weight or audit list re-runs the gate."""
    try:
        return {"policy": recipe_policy(recipe, path)[0].model_dump(mode="json")}
    except Exception:  # noqa: BLE001 - an unreadable policy fails the step's check, not the cache key
        return {"policy": None}


def run_gate(ctx: StepContext, policy: Any, pol_path: str | None, names: list[str], required: list[str], private_name: str, holdout_name: str | None,
             context: dict[str, Any], on_fail: str, step_type: str) -> None:
    """The one release gate: run ``names`` (each settled against the policy's ``min_records``), quarantine every
    flagged record with its reasons, write the rest, report the verdict over ``required`` and stop on a failing
    release unless ``on_fail`` is ``quarantine``."""
    from pathlib import Path

    from ..audit.policy import protects_against
    from ..registry import AUDITS

    synthetic = ctx.input()
    private = ctx.dataset(private_name)
    holdout = ctx.dataset(holdout_name) if holdout_name else None
    context = {"seed": ctx.seed, "run_dir": ctx.run_dir, "cache_dir": Path(ctx.home) / "cache" / "imaging", **context}
    flagged: dict[str, list[str]] = {}
    release_reasons: list[str] = []
    summary = {}
    with ctx.progress(len(names), "audit", unit="audits") as bar:
        for name in names:
            ap = policy.audit_policy(name, names)
            if not ap.enabled:
                summary[name] = {"verdict": "skipped", "reason": "disabled in the policy (enabled: false)", "flagged": 0, "reasons": [],
                                 "caveats": [], "findings": []}
                continue
            res = AUDITS.get(name)(ap).run(synthetic, private, holdout, **context).settle(policy.min_records, len(synthetic))
            for f in res.figures:
                ctx.add_figure(f["name"], f["value"], f["how"])
            for k, v in res.sections.items():
                ctx.add_section(f"{name}.{k}", v)
            for fd in res.findings:
                flagged.setdefault(fd.record_id, []).append(fd.reason)
            release_reasons += [f"{name}: {r}" for r in res.release_reasons]
            summary[name] = {"verdict": res.verdict, "reason": res.reason, "flagged": len(res.findings), "reasons": res.release_reasons,
                             "caveats": res.caveats, "findings": [{"record_id": f.record_id, "reason": f.reason, "value": f.value} for f in res.findings]}
            bar.advance(1)
    keep = []
    for r in synthetic:
        if r.id in flagged:
            rr = r.model_copy(deep=True)
            rr.scores["audit_flags"] = flagged[r.id]
            ctx.quarantine(rr, "+".join(sorted(set(flagged[r.id]))), step_type)
        else:
            keep.append(r)
    verdict, exceptions = release_verdict(summary, required)
    ctx.add_section("audit_summary", {"verdict": verdict, "release_reasons": release_reasons, "exceptions": exceptions, "audits": summary,
                                      "required": required, "policy": str(pol_path),
                                      "protects": protects_against(ctx.recipe.resolve_path(pol_path) if (ctx.recipe and pol_path) else pol_path)})
    ctx.add_figure("release_verdict", verdict, f"pass only when every audit the policy requires ({', '.join(required)}) ran, was powered "
                                               f"and passed ({pol_path}); exceptions: {'; '.join(exceptions) or 'none'}")
    ctx.add_figure("records_quarantined", len(synthetic) - len(keep), "synthetic records flagged by any audit (kept in quarantine/ with the reason)")
    ctx.add_figure("records_released", len(keep), "synthetic records passing every per-record check")
    ctx.write_output(keep)
    if verdict == "fail" and on_fail == "stop":
        raise AuditFailedError("The privacy audit failed the release gate: " + "; ".join(release_reasons)
                               + ". Flagged records are in the run's quarantine/. Review them with your privacy officer; "
                               f"to continue with flagged records quarantined, set `on_fail: quarantine` on the {step_type} step.")


class ImageAuditConfig(StepConfig):
    type: Literal["image_audit"] = "image_audit"
    private: str = Field("private", description="dataset of the images the generator was trained on")
    holdout: str | None = Field("holdout", description="dataset of real images NOT trained on (calibrates the SSIM threshold)")
    policy: str | None = Field(None, description="policy file (default: the recipe's privacy.policy); its image_copy section is used")
    on_fail: Literal["stop", "quarantine"] = "stop"


@register_step
class ImageAuditStep(Step[ImageAuditConfig]):
    """The image memorization gate: the ``image_copy`` audit through the one release gate (:func:`run_gate`), with
    ``image_copy`` as the audit the verdict requires."""

    Config = ImageAuditConfig

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        return _policy_problems(recipe, self.config.policy)

    def cache_key_extra(self) -> dict[str, Any]:
        return _policy_key(self.recipe, self.config.policy)

    def run(self, ctx: StepContext) -> None:
        c = self.config
        policy, pol_path = recipe_policy(ctx.recipe, c.policy)
        run_gate(ctx, policy, pol_path, ["image_copy"], ["image_copy"], c.private, c.holdout, {}, c.on_fail, self.type)
