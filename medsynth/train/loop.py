"""One training loop for every medsynth model, private or not, with the noise-robust options.

``fit_module`` trains a torch module on tensors ``inputs`` (a tuple passed to ``forward``) and targets. The loss is
per record (shape [B]) so that sample weights, annealing and ghost clipping all act on the same quantity. With a
:class:`~medsynth.dp.DPPlan` the module, optimizer, criterion and loader go through Opacus
(:func:`~medsynth.dp.make_private`) and :class:`~medsynth.dp.DPGuard` checks the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["TrainSettings", "FitResult", "fit_module", "per_sample_loss"]

Task = Literal["multiclass", "multilabel", "token"]


@dataclass
class TrainSettings:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = 0.0
    seed: int = 0


@dataclass
class FitResult:
    model: Any
    history: list[dict[str, float]] = field(default_factory=list)
    privacy: dict[str, Any] | None = None
    weights: Any = None
    seconds_per_epoch: list[float] = field(default_factory=list)


def per_sample_loss(out: Any, y: Any, task: Task, label_smoothing: float = 0.0) -> Any:
    """Loss per record, shape [B]. ``token``: mean over the record's labelled tokens (label -100 = ignored)."""
    import torch.nn.functional as F

    if task == "multiclass":
        return F.cross_entropy(out, y, reduction="none", label_smoothing=label_smoothing)
    if task == "multilabel":
        t = y * (1 - label_smoothing) + 0.5 * label_smoothing if label_smoothing else y
        return F.binary_cross_entropy_with_logits(out, t, reduction="none").mean(1)
    B, T, C = out.shape
    tok = F.cross_entropy(out.reshape(B * T, C), y.reshape(B * T), reduction="none", ignore_index=-100,
                          label_smoothing=label_smoothing).view(B, T)
    mask = (y != -100).float()
    return (tok * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def _probs(out: Any, task: Task) -> Any:
    import torch

    return torch.sigmoid(out) if task == "multilabel" else torch.softmax(out, -1)


def _make_criterion(task: Task, label_smoothing: float, state: dict[str, Any]) -> Any:
    import torch
    from torch import nn

    class Criterion(nn.Module):
        """Per-record loss × per-record weight (+ temporal-ensembling consistency). ``reduction`` is switched to
        ``none`` by Opacus' ghost-clipping wrapper."""

        def __init__(self) -> None:
            super().__init__()
            self.reduction = "mean"

        def forward(self, out: Any, y: Any, idx: Any) -> Any:
            loss = per_sample_loss(out, y, task, label_smoothing)
            w = state.get("weights")
            if w is not None:
                loss = loss * w[idx].to(loss.dtype)
            ens = state.get("ensemble")
            if ens is not None:
                p = _probs(out, task)
                ens.record(idx, p)
                tgt = ens.targets(idx)
                lam = state.get("consistency", 0.0)
                if tgt is not None and lam > 0:
                    loss = loss + lam * ((p - tgt) ** 2).flatten(1).mean(1)
            if self.reduction == "none":
                return loss
            if self.reduction == "sum":
                return loss.sum()
            return loss.mean() if loss.numel() else torch.zeros((), requires_grad=True)

    return Criterion()


def fit_module(model: Any, inputs: tuple[Any, ...], y: Any, task: Task, settings: TrainSettings, *, dp_plan: Any = None,
               dp: Any = None, robust: Any = None, sample_weight: Any = None, synthetic_mask: Any = None,
               clean: tuple[tuple[Any, ...], Any] | None = None, make_model: Any = None, progress: Any = None,
               time_epochs: bool = False) -> FitResult:
    """Train ``model`` in place. ``synthetic_mask`` marks the rows the ``anneal`` weight applies to.

    With ``dp_plan``/``dp`` the run is DP-SGD (Poisson sampling, the configured clipping mode) and the result's
    ``privacy`` holds ε by both accountants, σ, q, steps and the guard summary. Raises DPTrainingError on a guard
    failure (the caller must then not release the model).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from ..dp import DPGuard, epsilons, make_private
    from .robust import TemporalEnsemble, anneal_weight, learn_weights

    torch.manual_seed(settings.seed)
    n = int(y.shape[0])
    idx = torch.arange(n)
    ls = robust.label_smoothing if robust is not None else 0.0
    state: dict[str, Any] = {}
    base_w = torch.ones(n) if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32).clone()
    learned = None
    if robust is not None and robust.reweight is not None:
        if clean is None or make_model is None:
            raise ValueError("robust.reweight needs a clean set and a model factory")

        def lf(out: Any, yy: Any) -> Any:
            return per_sample_loss(out, yy, task, ls)

        learned = learn_weights(make_model, inputs, y, clean[0], clean[1], lf, robust.reweight, settings.batch_size, settings.lr, settings.seed)
        base_w = base_w * learned
    ens = None
    if robust is not None and robust.temporal is not None:
        with torch.no_grad():
            shape = tuple(model(*(t[:1] for t in inputs)).shape[1:])
        ens = TemporalEnsemble(n, shape, robust.temporal, settings.epochs)
        state["ensemble"] = ens
    state["weights"] = base_w
    criterion = _make_criterion(task, ls, state)
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=settings.lr, momentum=0.9, weight_decay=settings.weight_decay)
    elif settings.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    ds = TensorDataset(*inputs, y, idx)
    g = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(ds, batch_size=settings.batch_size, shuffle=True, generator=g)
    guard = None
    engine = None
    if dp_plan is not None:
        model.train()
        model, opt, criterion, loader, engine = make_private(model, opt, criterion, loader, dp_plan, dp, seed=settings.seed)
        guard = DPGuard(model, opt, dp.grad_sample_mode)
    res = FitResult(model=model)
    bar = progress
    model.train()
    for epoch in range(settings.epochs):
        t0 = time.perf_counter()
        w = base_w.clone()
        if robust is not None and robust.anneal is not None and synthetic_mask is not None:
            a = anneal_weight(robust.anneal, epoch, settings.epochs)
            w = torch.where(torch.as_tensor(synthetic_mask, dtype=torch.bool), w * a, w)
        if ens is not None:
            w = w * ens.keep_mask(y.float() if task == "multilabel" else y, task == "multilabel", epoch)
            state["consistency"] = ens.consistency_weight(epoch)
        state["weights"] = w
        tot, cnt = 0.0, 0
        for batch in loader:
            *xb, yb, ib = batch
            if yb.shape[0] == 0 and dp_plan is None:
                continue
            opt.zero_grad()
            out = model(*xb)
            loss = criterion(out, yb, ib)
            loss.backward()
            opt.step()
            b = int(yb.shape[0])
            tot += float(loss.item()) * b
            cnt += b
        if ens is not None:
            ens.end_epoch()
        dt = time.perf_counter() - t0
        res.seconds_per_epoch.append(dt)
        res.history.append({"epoch": epoch + 1, "loss": tot / max(1, cnt), "seconds": dt})
        if bar is not None:
            bar.advance(1)
    model.eval()
    if guard is not None:
        summary = guard.finish()
        hist = engine.accountant.history
        steps = sum(h[2] for h in hist)
        eps = epsilons(dp_plan.noise_multiplier, dp_plan.sample_rate, steps, dp_plan.delta)
        chosen = eps[dp.accountant]
        if chosen > dp.epsilon * 1.01 + 1e-6:
            from ..dp import DPTrainingError

            raise DPTrainingError(f"the run spent ε={chosen:.4g} ({dp.accountant}) > the target {dp.epsilon:g} that was debited; "
                                  "no model is released. This is a bug in medsynth.")
        res.privacy = {"epsilon_target": dp.epsilon, "delta": dp.delta, "epsilon_rdp": eps["rdp"], "epsilon_prv": eps["prv"],
                       "accountant": dp.accountant, "noise_multiplier": dp_plan.noise_multiplier, "sample_rate": dp_plan.sample_rate,
                       "steps": steps, "max_grad_norm": dp.max_grad_norm, "grad_sample_mode": dp.grad_sample_mode,
                       "poisson_sampling": True, "guard": summary}
        res.model = model._module if hasattr(model, "_module") else model
        if hasattr(model, "_close"):
            model._close()
    if learned is not None:
        res.weights = learned
    return res
