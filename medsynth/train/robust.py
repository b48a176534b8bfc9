"""Noise-robust training on synthetic data, selectable in a recipe (``robust:`` block of the ``train`` step).

Synthetic records carry label noise (the generator wrote something else than it was asked for) and
distribution shift. Four remedies from the survey, composable:

- ``label_smoothing``: soft targets (multi-class: PyTorch's label smoothing; multi-label: y·(1−ε) + ε/2).
- ``reweight`` (ZeroGen+/SunGen style): one weight per synthetic record, learned so that a model trained on the
  weighted synthetic loss does well on a small *clean* set: a one-step look-ahead meta-gradient (learning to
  reweight) on persistent weight logits, then a fresh model is trained with the learned weights.
- ``temporal`` (FewGen-style temporal ensembling): an exponential moving average of each record's predictions
  over epochs is a second target (consistency loss, ramped up), and after the ramp-up records whose ensembled
  prediction disagrees with their label are dropped (weight 0).
- ``anneal``: train on synthetic + clean records with the synthetic records' weight annealed from ``start`` to
  ``end`` over the epochs (linear or cosine).

Under DP-SGD only ``label_smoothing`` and ``anneal`` are allowed: ``reweight`` learns weights from the model's
gradients on the private records outside the clipped updates, and ``temporal`` keeps unclipped per-record
predictions, so neither is covered by the stated ε.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import RecipeError

__all__ = ["RobustConfig", "ReweightConfig", "TemporalConfig", "AnnealConfig", "check_robust_with_dp", "learn_weights",
           "TemporalEnsemble", "anneal_weight"]


class ReweightConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clean: str | None = Field(None, description="dataset of clean (real, labelled) records; in a recipe: a dataset name. Use a small "
                                                 "validation sample, never the test set")
    warmup: int = Field(2, ge=0, description="plain epochs before the weights are learned")
    epochs: int = Field(10, ge=1, description="epochs of the weight-learning phase")
    lr: float = Field(0.1, gt=0, description="learning rate of the weight logits (Adam)")
    inner_lr: float = Field(0.1, gt=0, description="step size of the look-ahead update")


class TemporalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(0.6, ge=0, lt=1, description="EMA momentum of the ensembled predictions")
    weight: float = Field(1.0, ge=0, description="maximum weight of the consistency loss")
    rampup: float = Field(0.3, gt=0, le=1, description="share of the epochs over which the consistency weight ramps up")
    drop_below: float | None = Field(0.2, ge=0, le=1, description="after the ramp-up, records whose ensembled probability of their "
                                                                  "label is below this are dropped; null keeps all")


class AnnealConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clean: str | None = Field(None, description="dataset of clean records trained on together with the synthetic ones")
    start: float = Field(1.0, ge=0)
    end: float = Field(0.1, ge=0)
    schedule: Literal["linear", "cosine"] = "linear"


class RobustConfig(BaseModel):
    """``robust:`` block. Every part is optional; together they compose."""

    model_config = ConfigDict(extra="forbid")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    reweight: ReweightConfig | None = None
    temporal: TemporalConfig | None = None
    anneal: AnnealConfig | None = None

    @property
    def active(self) -> list[str]:
        out = []
        if self.label_smoothing > 0:
            out.append("label_smoothing")
        out += [k for k in ("reweight", "temporal", "anneal") if getattr(self, k) is not None]
        return out

    def clean_datasets(self) -> list[str]:
        return sorted({c.clean for c in (self.reweight, self.anneal) if c is not None and c.clean})


def check_robust_with_dp(robust: RobustConfig | None, dp: Any) -> None:
    if robust is None or dp is None:
        return
    bad = [k for k in ("reweight", "temporal") if getattr(robust, k) is not None]
    if bad:
        raise RecipeError(f"robust.{bad[0]} cannot be combined with dp: it uses per-record information outside the clipped, noised "
                          "updates, so the stated ε would not hold. With dp, use robust.label_smoothing and/or robust.anneal.")


def anneal_weight(cfg: AnnealConfig, epoch: int, epochs: int) -> float:
    t = epoch / max(1, epochs - 1)
    if cfg.schedule == "cosine":
        return cfg.end + (cfg.start - cfg.end) * 0.5 * (1 + math.cos(math.pi * t))
    return cfg.start + (cfg.end - cfg.start) * t


class TemporalEnsemble:
    """Per-record EMA of predicted probabilities (Laine & Aila's temporal ensembling, as FewGen uses it)."""

    def __init__(self, n: int, shape: tuple[int, ...], cfg: TemporalConfig, epochs: int):
        import torch

        self.cfg = cfg
        self.epochs = epochs
        self.Z = torch.zeros((n, *shape))
        self.z = torch.zeros((n, *shape))
        self.t = 0

    def record(self, idx: Any, probs: Any) -> None:
        self.z[idx] = probs.detach().to(self.z.dtype)

    def end_epoch(self) -> None:
        a = self.cfg.alpha
        self.Z = a * self.Z + (1 - a) * self.z
        self.t += 1

    def targets(self, idx: Any) -> Any:
        if self.t == 0:
            return None
        return self.Z[idx] / (1 - self.cfg.alpha ** self.t)

    def consistency_weight(self, epoch: int) -> float:
        r = max(1.0, self.cfg.rampup * self.epochs)
        x = min(1.0, epoch / r)
        return self.cfg.weight * math.exp(-5.0 * (1.0 - x) ** 2)

    def keep_mask(self, y: Any, multilabel: bool, epoch: int) -> Any:
        """Records to keep (1) or drop (0) after the ramp-up, from the ensembled probability of their labels."""
        import torch

        n = self.Z.shape[0]
        if self.cfg.drop_below is None or self.t == 0 or epoch < self.cfg.rampup * self.epochs:
            return torch.ones(n)
        zhat = self.Z / (1 - self.cfg.alpha ** self.t)
        if multilabel:
            # agreement with the label vector: mean probability of the observed value of each label
            agree = (zhat * y + (1 - zhat) * (1 - y)).mean(1)
        else:
            agree = zhat.gather(1, y.view(-1, 1)).squeeze(1)
        return (agree >= self.cfg.drop_below).float()


def learn_weights(make_model: Any, inputs: tuple[Any, ...], y: Any, clean_inputs: tuple[Any, ...], clean_y: Any, loss_fn: Any,
                  cfg: ReweightConfig, batch_size: int, base_lr: float, seed: int = 0) -> Any:
    """Learn one weight in (0, 1] per training record with a look-ahead meta-gradient on the clean set.

    At each step on a batch B: the model takes a virtual SGD step on Σ_B w_i ℓ_i / Σ_B w_i; the clean loss after
    that step is differentiated w.r.t. the weight logits (Adam update); then the model takes the real step with the
    (detached) weights. Returns the weights normalised to mean 1.
    """
    import torch
    from torch.func import functional_call

    g = torch.Generator().manual_seed(seed)
    n = y.shape[0]
    model = make_model()
    model.train()
    logits = torch.zeros(n, requires_grad=True)
    opt_w = torch.optim.Adam([logits], lr=cfg.lr)
    opt_m = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=base_lr)
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    nc = clean_y.shape[0]
    for ep in range(cfg.warmup + cfg.epochs):
        perm = torch.randperm(n, generator=g)
        if ep < cfg.warmup:  # plain epochs first: the look-ahead gradient of a random model carries no signal
            for s in range(0, n, batch_size):
                idx = perm[s:s + batch_size]
                opt_m.zero_grad()
                loss_fn(model(*(t[idx] for t in inputs)), y[idx]).mean().backward()
                opt_m.step()
            continue
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            cidx = torch.randint(0, nc, (min(nc, batch_size),), generator=g)
            params = {k: p for k, p in model.named_parameters() if p.requires_grad}
            w = torch.sigmoid(logits[idx])
            out = functional_call(model, params, tuple(t[idx] for t in inputs))
            lw = (loss_fn(out, y[idx]) * w).sum() / w.sum().clamp_min(1e-6)
            grads = torch.autograd.grad(lw, [params[k] for k in names], create_graph=True)
            look = {k: params[k] - cfg.inner_lr * gr for k, gr in zip(names, grads, strict=True)}
            cout = functional_call(model, look, tuple(t[cidx] for t in clean_inputs))
            lc = loss_fn(cout, clean_y[cidx]).mean()
            opt_w.zero_grad()
            gw = torch.autograd.grad(lc, logits)[0]
            logits.grad = gw
            opt_w.step()
            opt_m.zero_grad()
            w2 = torch.sigmoid(logits[idx]).detach()
            out = model(*(t[idx] for t in inputs))
            ((loss_fn(out, y[idx]) * w2).sum() / w2.sum().clamp_min(1e-6)).backward()
            opt_m.step()
    w = torch.sigmoid(logits).detach()
    return w / w.mean().clamp_min(1e-8)
