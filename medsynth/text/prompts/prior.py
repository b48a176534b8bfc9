"""``prior``: target label sets sampled from the label prior estimated from the seeds.

Naive label-conditioned generation is balanced per label, and the base model drifts to normal reports: the issue's
starting point had 3% normal reports against about a third in the real corpus. This strategy samples each target
label set from the seeds: the share of normal documents, the number of labels per abnormal document, and each
label's frequency (a share ``joint`` of the targets are exact label sets of seeds, which keeps co-occurrences).
After ``warmup`` records, it steers against the deficit of what the model actually wrote so far (the labels the
verifier found), so the synthetic label distribution tracks the seeds' even when the model under-produces some
labels. The state depends only on committed records, so resumed runs plan the same targets.
"""

from __future__ import annotations

from collections import Counter

from pydantic import Field

from ...registry import STRATEGIES
from .base import Job, Stage, Strategy, StrategyEnv, StrategyOptions

__all__ = ["PriorStrategy"]


class PriorOptions(StrategyOptions):
    max_labels: int = Field(3, ge=1, description="at most this many labels per target")
    steer: bool = Field(True, description="steer against the deficit of the labels actually written")
    warmup: int = Field(16, ge=1, description="records written before steering starts")
    joint: float = Field(0.3, ge=0.0, le=1.0, description="share of targets that copy a seed's whole label set")
    smoothing: float = Field(0.5, ge=0.0, description="pseudo-count of labels of the label set that no seed carries")
    power: float = Field(1.0, gt=0.0, le=1.0, description="abnormal label weights are seed counts ** power: 1 matches the seeds' frequencies; < 1 flattens them towards uniform (more examples of rare findings for a downstream classifier; the normal share is unchanged)")


@STRATEGIES.register("prior")
class PriorStrategy(Strategy):
    name = "prior"
    survey_method = "label-prior matching (against the generator's label drift)"
    description = "target label sets from the seeds' label distribution; steered against the deficit of what was written"
    stage = Stage.TARGET
    Config = PriorOptions

    def setup(self, env: StrategyEnv) -> None:
        o: PriorOptions = self.options  # type: ignore[assignment]
        normal = env.normal_label
        self.sets = [sorted(set(lab for lab in r.labels if lab in env.label_set)) for r in env.seeds]
        self.sets = [s for s in self.sets if s]
        n = max(len(self.sets), 1)
        self.p_normal = sum(1 for s in self.sets if normal is not None and s == [normal]) / n
        self.abnormal = [lab for lab in env.label_set if lab != normal]
        self.prior = Counter(lab for s in self.sets for lab in s if lab != normal)
        self.k_dist = Counter(min(len([x for x in s if x != normal]), o.max_labels) for s in self.sets if s != [normal])
        env.figure("prior_normal_share", round(self.p_normal, 4), f"share of the {n} labelled seeds whose only label is '{normal}'")

    def _weights(self, env: StrategyEnv) -> tuple[float, list[float]]:
        o: PriorOptions = self.options  # type: ignore[assignment]
        base = [(self.prior[lab] or o.smoothing) ** o.power for lab in self.abnormal]
        pn = self.p_normal
        if not (o.steer and env.n_observed >= o.warmup):
            return pn, base
        obs_n = env.observed.get(env.normal_label, 0) / env.n_observed if env.normal_label else 0.0
        pn = min(max(self.p_normal - (obs_n - self.p_normal), 0.02), 0.95)
        tot_seed = sum(base) or 1.0
        tot_obs = sum(env.observed[lab] for lab in self.abnormal) or 1
        w = []
        for lab, b in zip(self.abnormal, base, strict=True):
            want = b / tot_seed
            w.append(max(2 * want - env.observed[lab] / tot_obs, 0.1 * want + 1e-4))
        return pn, w

    def plan(self, job: Job, env: StrategyEnv) -> None:
        o: PriorOptions = self.options  # type: ignore[assignment]
        rng = job.rng
        pn, w = self._weights(env)
        if env.normal_label and (rng.random() < pn or not self.abnormal):
            job.plan.labels = [env.normal_label]
        elif self.sets and rng.random() < o.joint and not (o.steer and env.n_observed >= o.warmup):
            cands = [s for s in self.sets if s != [env.normal_label]] or self.sets
            job.plan.labels = list(rng.choice(cands))
        elif self.abnormal:
            k = rng.choices(list(self.k_dist), weights=list(self.k_dist.values()))[0] if self.k_dist else 1
            out: list[str] = []
            while len(out) < max(1, k) and len(out) < len(self.abnormal):
                lab = rng.choices(self.abnormal, weights=w)[0]
                if lab not in out:
                    out.append(lab)
            job.plan.labels = sorted(out)
        job.notes["target_labels"] = list(job.plan.labels)
