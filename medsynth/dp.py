"""DP-SGD with Opacus, the one DP core every private trainer uses (classifiers and taggers in ``train``, the DP imputer
in ``tabular``, generator adapters in ``text.adapt``, the MIA audit's shadow models): config, module validation,
noise calibration, accountants and the silent-failure guards. It depends on nothing in medsynth but the exceptions.

The front door is :class:`DPConfig` (what a recipe's ``dp:`` block holds) and :func:`make_private` (wraps a
model, optimizer, criterion and data set exactly as Opacus' ``PrivacyEngine.make_private`` does, with Poisson
sampling and ghost clipping by default). :class:`DPGuard` checks what Opacus does not check itself:

- before training: every layer Opacus cannot train privately is reported at once with its fix
  (:func:`validate_module`, built on ``ModuleValidator``'s validators but naming the layer);
- during training: every trainable parameter got a fresh per-sample gradient (hooks/functorch: ``grad_sample``)
  or per-sample gradient norm (ghost clipping: ``_norm_sample``) in every step — a parameter without one
  would be updated without clipping, or clipped with a stale norm;
- after training: every trainable parameter changed and every frozen one did not (a parameter frozen or
  replaced after ``make_private`` silently escapes the DP optimizer).

ε is calibrated with the chosen accountant (``rdp`` or ``prv``) for the planned number of steps and reported
afterwards by both accountants on the steps actually taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .exceptions import MedsynthError, RecipeError

__all__ = ["DPSettings", "DPConfig", "DPPlan", "DPModelError", "DPTrainingError", "ModuleProblem", "validate_module", "assert_dp_compatible",
           "plan_dp", "calibrate_noise", "epsilons", "make_private", "DPGuard", "check_dp_inputs", "ghost_supported_layers"]


class BudgetTotal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epsilon: float = Field(gt=0)
    delta: float = Field(gt=0, lt=1)


class DPSettings(BaseModel):
    """What every DP-SGD run needs: the target (ε, δ), the clipping norm, the accountant and the budget to debit.
    The ``dp:`` block of an ``adapt`` step; :class:`DPConfig` adds what classifier and imputer training can choose."""

    model_config = ConfigDict(extra="forbid")
    epsilon: float = Field(gt=0, description="target ε of the whole training run (debited from the budget before training)")
    delta: float = Field(1e-5, gt=0, lt=1, description="target δ; must be below 1/n for n training records")
    max_grad_norm: float = Field(1.0, gt=0, description="per-sample gradient clipping norm C")
    accountant: Literal["rdp", "prv"] = Field("rdp", description="accountant used to calibrate the noise (both are reported)")
    budget: str | None = Field(None, description="privacy budget to debit (default: the recipe's privacy.budget)")


class DPConfig(DPSettings):
    """``dp:`` block of a training step. ε and δ are what the step debits from the privacy budget before training."""

    grad_sample_mode: Literal["ghost", "hooks", "functorch"] = Field(
        "ghost", description="ghost: ghost clipping (no per-sample gradients materialised; Linear/Embedding layers, others "
                             "fall back to fast per-layer norms); hooks: per-sample gradients via hooks")
    create_budget: BudgetTotal | None = Field(None, description="create the budget with these totals if it does not exist yet "
                                                                "(an existing budget with other totals is an error; budgets never grow)")
    feature_bounds: dict[str, tuple[float, float]] | None = Field(
        None, description="public [low, high] per numeric table column: values are clipped and scaled by these instead of "
                          "the private data's mean/std, so the scaling is covered by ε too")


class DPModelError(MedsynthError):
    """The model has layers Opacus cannot train privately; ``problems`` lists each layer and its fix."""

    def __init__(self, problems: list[ModuleProblem]):
        self.problems = problems
        lines = "\n".join(f"  - {p.name} ({p.type}): {p.problem} Fix: {p.fix}" for p in problems)
        super().__init__(f"{len(problems)} layer(s) cannot be trained with DP-SGD:\n{lines}")


class DPTrainingError(MedsynthError):
    """A DP training run broke one of the guards (no model is released)."""


@dataclass
class ModuleProblem:
    name: str
    type: str
    problem: str
    fix: str


_FIXES = {
    "BatchNorm": "replace it with GroupNorm (opacus.validators.ModuleValidator.fix does this); BatchNorm mixes samples of a batch.",
    "InstanceNorm": "use GroupNorm or affine=False; tracked running statistics leak data outside the clipped gradients.",
    "LSTM": "use opacus.layers.DPLSTM (same API).",
    "GRU": "use opacus.layers.DPGRU.",
    "RNN": "use opacus.layers.DPRNN.",
    "MultiheadAttention": "use opacus.layers.DPMultiheadAttention.",
}


def _fix_for(type_name: str, message: str) -> str:
    for k, v in _FIXES.items():
        if k in type_name:
            return v
    if "training mode" in message:
        return "call model.train() before training."
    return "replace the layer with a supported one (see opacus.validators) or freeze it (requires_grad=False)."


def validate_module(model: Any) -> list[ModuleProblem]:
    """Every problem Opacus' validators find, each with the layer's name and the fix (nothing raised)."""
    from opacus.validators.module_validator import ModuleValidator

    problems: list[ModuleProblem] = []
    if not model.training:
        problems.append(ModuleProblem("(model)", type(model).__name__, "the model is in eval mode.", "call model.train() before training."))
    for name, sub in model.named_modules():
        if not any(p.requires_grad for p in sub.parameters(recurse=False)):
            continue
        validator = ModuleValidator.VALIDATORS.get(type(sub))
        if validator is None:
            continue
        for err in validator(sub):
            msg = str(err).strip()
            problems.append(ModuleProblem(name or "(root)", type(sub).__name__, msg, _fix_for(type(sub).__name__, msg)))
    # running statistics of any norm layer are updated from raw data, outside DP-SGD
    for name, sub in model.named_modules():
        if getattr(sub, "track_running_stats", False) and not any(p.name == (name or "(root)") for p in problems):
            problems.append(ModuleProblem(name or "(root)", type(sub).__name__, "tracks running statistics of the data (not covered by DP-SGD).",
                                          _fix_for(type(sub).__name__, "")))
    return problems


def assert_dp_compatible(model: Any) -> None:
    probs = validate_module(model)
    if probs:
        raise DPModelError(probs)


def ghost_supported_layers(model: Any) -> dict[str, list[str]]:
    """Which trainable layers use ghost clipping (norms without per-sample gradients) and which fall back to
    per-layer per-sample gradients (still exact DP-SGD, more memory/time)."""
    from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import GradSampleModuleFastGradientClipping as G

    out: dict[str, list[str]] = {"ghost": [], "per_sample_fallback": []}
    for name, sub in model.named_modules():
        if not any(p.requires_grad for p in sub.parameters(recurse=False)):
            continue
        (out["ghost"] if type(sub) in G.NORM_SAMPLERS else out["per_sample_fallback"]).append(f"{name or '(root)'}:{type(sub).__name__}")
    return out


def check_dp_inputs(cfg: DPSettings, n: int, what: str = "training set") -> None:
    """Errors before training for (ε, δ) that cannot be right for n records."""
    if not (math.isfinite(cfg.epsilon) and cfg.epsilon > 0):
        raise RecipeError(f"dp.epsilon must be > 0 (got {cfg.epsilon}).")
    if n < 2:
        raise RecipeError(f"DP training needs at least 2 records in the {what} (got {n}).")
    if cfg.delta >= 1.0 / n:
        raise RecipeError(f"dp.delta={cfg.delta:g} is not below 1/n = {1.0 / n:.3g} for the {n} records of the {what}: a δ that "
                          f"large allows releasing a record outright. Use dp.delta ≤ {0.1 / n:.1g} (e.g. 1e-5 for up to 10,000 records).")


@dataclass
class DPPlan:
    """Noise calibrated for (ε, δ) at a sampling rate and a number of steps."""

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    epsilon_planned: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "delta": self.delta, "noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
                "steps": self.steps, "accountant": self.accountant, "epsilon_planned": self.epsilon_planned}


def epsilons(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> dict[str, float]:
    """ε after ``steps`` Poisson-subsampled Gaussian steps, by the RDP and the PRV accountant (Opacus)."""
    return {name: (_epsilon(name, float(noise_multiplier), float(sample_rate), int(steps), float(delta)) if steps > 0 else 0.0)
            for name in ("rdp", "prv")}


@lru_cache(maxsize=4096)
def _epsilon(accountant: str, sigma: float, q: float, steps: int, delta: float) -> float:
    import warnings

    from opacus.accountants import PRVAccountant, RDPAccountant

    if accountant == "rdp_int":  # integer orders only: 30x faster, ε at most ~2% larger (a valid, conservative bound)
        from opacus.accountants.analysis import rdp as R

        orders = [a for a in RDPAccountant.DEFAULT_ALPHAS if float(a).is_integer()]
        return float(R.get_privacy_spent(orders=orders, rdp=R.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders), delta=delta)[0])
    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    acc.history = [(float(sigma), float(q), int(steps))]
    if accountant == "prv" and sigma < 0.2:
        return float("nan")  # the PRV discretisation needs a domain too large to allocate at this little noise (ε is huge anyway)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(acc.get_epsilon(delta))
        except (MemoryError, ValueError, OverflowError):
            if accountant == "prv":
                return float("nan")
            raise


def calibrate_noise(epsilon: float, delta: float, q: float, steps: int, accountant: str = "rdp", rel_tol: float = 0.01) -> float:
    """The smallest noise multiplier σ (to ``rel_tol`` in ε) with ε(σ) ≤ ``epsilon``: bracket by doubling, then bisect
    in log σ. Always returns a σ whose ε is at most the target (never rounds towards less noise)."""
    if accountant == "rdp":
        # bracket on the fast integer-order bound (conservative), then refine with every order
        hi = calibrate_noise(epsilon, delta, q, steps, "rdp_int", rel_tol)
        lo = hi * 0.85
        for _ in range(8):
            if epsilon - _epsilon("rdp", hi, q, steps, delta) <= rel_tol * epsilon / 2:
                break
            mid = math.sqrt(lo * hi)
            if _epsilon("rdp", mid, q, steps, delta) <= epsilon:
                hi = mid
            else:
                lo = mid
        return hi
    hi = 1.0
    if accountant == "prv":  # PRV is slow: bracket with the (larger-ε) RDP bound first
        hi = calibrate_noise(epsilon, delta, q, steps, "rdp", rel_tol)
    while _epsilon(accountant, hi, q, steps, delta) > epsilon:
        hi *= 2.0
        if hi > 1e6:
            raise RecipeError(f"no noise multiplier reaches ε={epsilon:g} at δ={delta:g} (q={q:.3g}, {steps} steps); raise epsilon or delta.")
    lo = hi / 2.0
    while lo > 1e-3 and _epsilon(accountant, lo, q, steps, delta) <= epsilon:
        hi, lo = lo, lo / 2.0
    for _ in range(30):
        if epsilon - _epsilon(accountant, hi, q, steps, delta) <= rel_tol * epsilon:
            break
        mid = math.sqrt(lo * hi)
        if _epsilon(accountant, mid, q, steps, delta) <= epsilon:
            hi = mid
        else:
            lo = mid
    return hi


def plan_dp(cfg: DPSettings, n: int, batch_size: int, epochs: int) -> DPPlan:
    """Calibrate the noise multiplier so that ``epochs`` epochs of Poisson sampling (rate = 1/⌈n/batch⌉, the rate
    Opacus' DPDataLoader uses) reach at most the target ε with ``cfg.accountant``."""
    check_dp_inputs(cfg, n)
    steps_per_epoch = max(1, math.ceil(n / max(1, batch_size)))
    q = 1.0 / steps_per_epoch
    steps = steps_per_epoch * max(1, epochs)
    sigma = calibrate_noise(cfg.epsilon, cfg.delta, q, steps, cfg.accountant)
    return DPPlan(cfg.epsilon, cfg.delta, sigma, q, steps, cfg.accountant, epsilons(sigma, q, steps, cfg.delta))


def make_private(model: Any, optimizer: Any, criterion: Any, data_loader: Any, plan: DPPlan, cfg: DPConfig, seed: int | None = None) -> tuple[Any, Any, Any, Any, Any]:
    """Opacus ``make_private`` with Poisson sampling and the configured per-sample gradient mode.

    Returns ``(module, optimizer, criterion, loader, engine)``. In ghost mode the criterion is Opacus'
    ``DPLossFastGradientClipping`` (``loss.backward()`` does the two passes); otherwise it is returned unchanged.
    """
    import torch
    from opacus import PrivacyEngine

    assert_dp_compatible(model)
    engine = PrivacyEngine(accountant=cfg.accountant)
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    kw: dict[str, Any] = dict(module=model, optimizer=optimizer, data_loader=data_loader, noise_multiplier=plan.noise_multiplier,
                              max_grad_norm=cfg.max_grad_norm, poisson_sampling=True, grad_sample_mode=cfg.grad_sample_mode,
                              noise_generator=gen)
    if cfg.grad_sample_mode == "ghost":
        kw["criterion"] = criterion
        module, opt, crit, loader = engine.make_private(**kw)
    else:
        module, opt, loader = engine.make_private(**kw)
        crit = criterion
    actual_q = 1.0 / len(loader)
    if not math.isclose(actual_q, plan.sample_rate, rel_tol=1e-9):
        raise DPTrainingError(f"the data loader's sampling rate {actual_q:.6g} differs from the calibrated {plan.sample_rate:.6g}; "
                              "the stated ε would be wrong. This is a bug in medsynth.")
    return module, opt, crit, loader, engine


class DPGuard:
    """Checks that DP-SGD really trained what it claims to (see module docstring). Cheap: O(#parameters) per step."""

    def __init__(self, model: Any, optimizer: Any, mode: str):
        import torch

        self.mode = mode
        self.optimizer = optimizer
        base = getattr(model, "_module", model)
        self.names = {id(p): n for n, p in base.named_parameters()}
        self.trainable = [(n, p) for n, p in base.named_parameters() if p.requires_grad]
        self.frozen = [(n, p) for n, p in base.named_parameters() if not p.requires_grad]
        self._before_trainable = {n: p.detach().clone() for n, p in self.trainable}
        self._before_frozen = {n: p.detach().clone() for n, p in self.frozen}
        opt_params = {id(p) for p in optimizer.params}
        missing = [n for n, p in self.trainable if id(p) not in opt_params]
        if missing:
            raise DPTrainingError(f"{len(missing)} trainable parameter(s) are not in the DP optimizer ({', '.join(missing[:5])}): "
                                  "they would be updated without clipping or noise. Build the optimizer from the trainable parameters "
                                  "before make_private.")
        self.steps = 0
        self.steps_with_samples = 0
        self.missing_per_sample: dict[str, int] = {}
        self.unfrozen_after_wrap: set[str] = set()
        prev = optimizer.step_hook

        def hook(opt: Any) -> None:
            self._check_step(opt)
            if prev is not None:
                prev(opt)

        optimizer.step_hook = hook
        self._torch = torch

    def _check_step(self, opt: Any) -> None:
        self.steps += 1
        had_any = False
        for p in opt.params:
            name = self.names.get(id(p), "?")
            if not p.requires_grad:
                self.unfrozen_after_wrap.add(name)
                continue
            if self.mode == "ghost":
                ns = getattr(p, "_norm_sample", None)
                ok = ns is not None
                if ok:
                    del p._norm_sample  # the next step must compute a fresh one (a stale norm would pass silently)
                    had_any = had_any or ns.numel() > 0
            else:
                gs = p.grad_sample
                ok = gs is not None and (not isinstance(gs, list) or len(gs) > 0)
                if ok:
                    t = gs if not isinstance(gs, list) else gs[-1]
                    had_any = had_any or t.shape[0] > 0
            if not ok:
                self.missing_per_sample[name] = self.missing_per_sample.get(name, 0) + 1
        if had_any:
            self.steps_with_samples += 1

    def finish(self) -> dict[str, Any]:
        """After training: raise DPTrainingError if a guard failed; else a summary for the report."""
        problems = []
        if self.steps == 0:
            problems.append("no DP optimizer step was taken")
        if self.missing_per_sample:
            names = ", ".join(f"{k} ({v} steps)" for k, v in list(self.missing_per_sample.items())[:5])
            problems.append(f"per-sample gradients were missing for {len(self.missing_per_sample)} trainable parameter(s): {names} — "
                            "a layer without per-sample gradient support, a parameter not used in forward(), or a layer called "
                            "outside the wrapped module")
        if self.unfrozen_after_wrap:
            problems.append(f"{len(self.unfrozen_after_wrap)} parameter(s) were frozen after make_private ({', '.join(sorted(self.unfrozen_after_wrap)[:5])}); "
                            "freeze layers before wrapping")
        unchanged = [n for n, p in self.trainable if self._torch.equal(p.detach(), self._before_trainable[n])]
        if unchanged and self.steps > 0:
            problems.append(f"{len(unchanged)} trainable parameter(s) did not change ({', '.join(unchanged[:5])}): the DP optimizer did not "
                            "update them (wrong optimizer, zero learning rate, or parameters replaced after wrapping)")
        changed_frozen = [n for n, p in self.frozen if not self._torch.equal(p.detach(), self._before_frozen[n])]
        if changed_frozen:
            problems.append(f"{len(changed_frozen)} frozen parameter(s) changed ({', '.join(changed_frozen[:5])}): something updated them "
                            "outside DP-SGD")
        if problems:
            raise DPTrainingError("DP training guard failed; no model is released: " + "; ".join(problems) + ".")
        return {"steps": self.steps, "steps_with_samples": self.steps_with_samples, "trainable_parameters": len(self.trainable),
                "frozen_parameters": len(self.frozen), "per_sample_gradients": "present for every trainable parameter in every step",
                "trainable_changed": True, "frozen_unchanged": True}
