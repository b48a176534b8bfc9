"""``fewshot``: in-context examples from the private seeds (scrubbed first), seed ids kept in provenance.

``k`` seed documents precede the open document, at least one sharing a target label when possible (and a normal
one for a normal target), shown with the same header lines the target gets. ``shared`` of them are drawn once per
batch and come first in every prompt of the batch, so the backend encodes them once (prefix sharing); the
label-sharing example is chosen per prompt and comes last, closest to the target. Seeds should come out of a ``scrub``
step: ``scrubbed: require`` refuses unscrubbed seeds, ``warn`` (default) reports how many lack the scrub marker.
Every generated record lists the ids of the seeds its prompt showed (``provenance.seed_record_ids``), which the
audits use to check copying.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...exceptions import RecipeError
from ...registry import STRATEGIES
from .base import Job, Stage, Strategy, StrategyEnv, StrategyOptions, rng_for

__all__ = ["FewShotStrategy"]


class FewShotOptions(StrategyOptions):
    k: int = Field(3, ge=1, le=16, description="seed examples per prompt")
    share_label: bool = Field(True, description="include a seed sharing a target label when there is one")
    scrubbed: Literal["require", "warn", "ignore"] = "warn"
    max_chars: int = Field(900, ge=50, description="seeds longer than this are not used as examples (prompt budget)")
    shared: int = Field(2, ge=0, le=16, description="of the k examples, how many are drawn once per batch and shown first by every "
                        "prompt of the batch (the backend encodes that block once: prefix sharing); the label-sharing example and "
                        "any others are chosen per prompt and come last. 0: all chosen per prompt")


@STRATEGIES.register("fewshot")
class FewShotStrategy(Strategy):
    name = "fewshot"
    survey_method = "few-shot prompting from private (scrubbed) seeds"
    description = "k seed documents as in-context examples, one sharing a target label; seed ids in provenance"
    stage = Stage.EXAMPLES
    Config = FewShotOptions

    def setup(self, env: StrategyEnv) -> None:
        o: FewShotOptions = self.options  # type: ignore[assignment]
        unscrubbed = [r.id for r in env.seeds if "scrubbed" not in r.provenance.params]
        if o.scrubbed == "require" and unscrubbed:
            raise RecipeError(f"Step '{env.step_name}': {len(unscrubbed)} of {len(env.seeds)} seeds did not pass a scrub step "
                              "(fewshot.scrubbed: require). Add `{type: scrub}` before generate, or set scrubbed: warn.")
        if o.scrubbed == "warn":
            env.figure("seeds_unscrubbed", len(unscrubbed), "seeds shown as in-context examples without a scrub step's marker (provenance.params.scrubbed); scrub them first")
        self.usable = [r for r in env.seeds if len(r.text or "") <= o.max_chars] or list(env.seeds)

    def plan(self, job: Job, env: StrategyEnv) -> None:
        o: FewShotOptions = self.options  # type: ignore[assignment]
        rng = job.rng
        target = set(job.plan.labels)
        n_shared = min(o.shared, o.k - 1 if o.share_label and target else o.k, len(self.usable))
        shared = rng_for(env.seed, "fewshot-shared", job.batch).sample(self.usable, max(n_shared, 0))
        exs = []
        if o.share_label and target:
            sharing = [r for r in self.usable if target & set(r.labels) and r not in shared]
            if sharing:
                best = max(len(target & set(r.labels)) for r in sharing)
                exs.append(rng.choice([r for r in sharing if len(target & set(r.labels)) == best]))
        rest = [r for r in self.usable if r not in exs and r not in shared]
        exs += rng.sample(rest, min(max(o.k - len(shared) - len(exs), 0), len(rest)))
        rng.shuffle(exs)
        job.examples = shared + exs
        job.notes["_shared_examples"] = len(shared)
        job.notes.setdefault("seed_record_ids", [])
        job.notes["seed_record_ids"] += [r.id for r in exs]
