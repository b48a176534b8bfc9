"""``feedback`` (ProGen): a quality estimator picks the most helpful generated examples and feeds them back.

Generation proceeds in rounds of ``every`` batches. At the end of each round, the generated records that the
verifier found to carry exactly their planned labels are scored by a quality estimator, and the ``pool_size``
best become in-context examples of the next rounds (``k`` per prompt, replacing seeds that share no target label).

Estimators:

- ``influence`` (ProGen's helpfulness): a TF-IDF + one-vs-rest logistic-regression task model is trained on all
  records generated so far; a record's helpfulness is the first-order influence of up-weighting it on the task
  model's loss on the seeds (the private, real validation set): ``g_val · g_z`` with ``g`` the log-loss gradients
  (identity-Hessian / TracIn approximation). Positive = one more step on this record lowers the loss on real data.
- ``fidelity``: label agreement only, ties broken at random (cheaper, no task model).

The pool is a deterministic function of the committed records, so resumed runs see the same pool.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...data.records import Record
from ...registry import STRATEGIES
from .base import Job, Stage, Strategy, StrategyEnv, StrategyOptions, rng_for

__all__ = ["FeedbackStrategy", "influence_scores"]


class FeedbackOptions(StrategyOptions):
    every: int = Field(4, ge=1, description="batches per round; the pool is refreshed after each round")
    k: int = Field(1, ge=1, le=8, description="generated examples per prompt")
    pool_size: int = Field(16, ge=1)
    estimator: Literal["influence", "fidelity"] = "influence"
    min_fidelity: float = Field(1.0, ge=0.0, le=1.0, description="only records whose label fidelity reaches this are candidates")


@STRATEGIES.register("feedback")
class FeedbackStrategy(Strategy):
    name = "feedback"
    survey_method = "ProGen in-context feedback"
    description = "after each round, the generated records a quality estimator scores most helpful join the in-context pool"
    stage = Stage.FEEDBACK
    requires = ("verify",)
    Config = FeedbackOptions

    def setup(self, env: StrategyEnv) -> None:
        self.generated: list[Record] = []
        self.rounds = 0
        self.last_scores: list[float] = []

    def observe(self, records: list[Record], batch: int, env: StrategyEnv) -> None:
        o: FeedbackOptions = self.options  # type: ignore[assignment]
        self.generated.extend(records)
        if (batch + 1) % o.every:
            return
        cands = [r for r in self.generated if r.scores.get("label_fidelity", 0) >= o.min_fidelity and r.scores.get("complete", True)]
        if not cands:
            return
        if o.estimator == "influence" and len(self.generated) >= 8:
            scores = influence_scores(self.generated, cands, env.seeds, env.label_set)
        else:
            rng = rng_for(env.seed, "feedback", batch)
            scores = [r.scores.get("label_fidelity", 0) + 1e-3 * rng.random() for r in cands]
        order = sorted(range(len(cands)), key=lambda i: (-scores[i], cands[i].id))
        env.pool = [cands[i] for i in order[: o.pool_size]]
        self.last_scores = [scores[i] for i in order[: o.pool_size]]
        self.rounds += 1
        env.sections["feedback"] = {"rounds": self.rounds, "pool": [r.id for r in env.pool], "estimator": o.estimator,
                                    "pool_scores": [round(float(s), 5) for s in self.last_scores]}

    def plan(self, job: Job, env: StrategyEnv) -> None:
        o: FeedbackOptions = self.options  # type: ignore[assignment]
        if not env.pool:
            return
        rng = job.rng
        target = set(job.plan.labels)
        sharing = [r for r in env.pool if target & set(r.labels)]
        chosen = rng.sample(sharing, min(o.k, len(sharing))) if sharing else []
        rest = [r for r in env.pool if r not in chosen]
        chosen += rng.sample(rest, min(o.k - len(chosen), len(rest)))
        # replace seeds that share no target label first, keep the prompt size
        exs = list(job.examples)
        first = int(job.notes.get("_shared_examples", 0))  # the batch's shared block (fewshot.shared) stays: it is encoded once per batch
        for fb in chosen:
            idx = [i for i, r in enumerate(exs) if i >= first and not (target & set(r.labels)) and not r.id.startswith(env.step_name)]
            if idx:
                exs[idx[-1]] = fb
            elif len(exs) > first:
                exs[-1] = fb
            else:
                exs.append(fb)
        job.examples = exs
        job.notes["seed_record_ids"] = [r.id for r in exs if r.id in env.seed_by_id]
        job.notes["feedback_examples"] = [r.id for r in chosen]


def influence_scores(train: list[Record], cands: list[Record], val: list[Record], label_set: list[str]) -> list[float]:
    """First-order influence of each candidate on a TF-IDF + logistic-regression task model's log-loss on ``val``
    (higher = more helpful): ``sum_k (p_zk - y_zk) * (x_z . G_k)`` with ``G_k = sum_v (p_vk - y_vk) x_v``."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MultiLabelBinarizer

    mlb = MultiLabelBinarizer(classes=label_set)
    Y = mlb.fit_transform([[lab for lab in r.labels if lab in label_set] for r in train])
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    X = vec.fit_transform([r.text or "" for r in train])
    Xv = vec.transform([r.text or "" for r in val])
    Yv = mlb.transform([[lab for lab in r.labels if lab in label_set] for r in val])
    Xc = vec.transform([r.text or "" for r in cands])
    Yc = mlb.transform([[lab for lab in r.labels if lab in label_set] for r in cands])
    K = Y.shape[1]
    Pv = np.zeros((Xv.shape[0], K))
    Pc = np.zeros((Xc.shape[0], K))
    for k in range(K):
        yk = Y[:, k]
        if yk.min() == yk.max():  # a label the synthetic data never (or always) has: constant model
            Pv[:, k] = Pc[:, k] = float(yk[0]) if len(yk) else 0.0
            continue
        m = LogisticRegression(C=4.0, max_iter=2000).fit(X, yk)
        Pv[:, k] = m.predict_proba(Xv)[:, 1]
        Pc[:, k] = m.predict_proba(Xc)[:, 1]
    G = Xv.T @ (Pv - Yv)  # F x K: gradient of the validation loss w.r.t. each label's weights
    S = np.asarray(Xc @ G)  # n x K: x_z . G_k
    return [float(v) for v in (S * (Pc - Yc)).sum(1)]


