"""A differentially private imputer: a masked-denoising MLP trained with DP-SGD (Opacus), scikit-learn compatible.

Each training row shows the network its observed cells with a random share hidden (``mask_rate``) plus the mask;
the network learns to reconstruct every observed cell (hidden ones weighted ×4). ``transform`` fills only the
missing cells; observed cells are returned unchanged. The network weights are (ε, δ)-DP with respect to the
training rows (Poisson sampling, per-row clipping, ε by the RDP and the PRV accountant: ``epsilon_rdp_``,
``epsilon_prv_``). Column scaling uses public ``bounds`` when given (then the whole imputer is covered by ε);
otherwise the columns' observed min/max, which are *not* covered — ``dp_scope_`` says which applies.

With ``budget=NAME`` the fit debits (ε, δ) from the privacy-budget ledger of ``$MEDSYNTH_HOME`` before training
(PrivacyBudgetExceededError if it does not fit; a failed fit keeps the debit, marked failed).

    from medsynth.tabular.dp import DPMLPImputer
    imp = DPMLPImputer(epsilon=3.0, delta=1e-5, budget="clinic_labs").fit(X)
    imp.epsilon_, imp.dp_scope_
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..exceptions import DataFormatError
from ..registry import IMPUTERS

__all__ = ["DPMLPImputer"]


class DPMLPImputer(TransformerMixin, BaseEstimator):
    """DP-SGD masked-denoising MLP imputer (see the module docstring).

    Parameters: ``epsilon``, ``delta`` (< 1/n), ``max_grad_norm``, ``accountant`` ('rdp'|'prv', calibrates the noise),
    ``epochs``, ``batch_size`` (expected Poisson batch), ``lr``, ``hidden`` (layer sizes), ``mask_rate``, ``bounds``
    (public (low, high) per column: a list, or a dict by DataFrame column), ``budget`` (ledger name to debit),
    ``grad_sample_mode`` ('ghost'|'hooks'), ``random_state``.
    """

    def __init__(self, epsilon: float = 3.0, delta: float = 1e-5, max_grad_norm: float = 1.0, accountant: str = "rdp",
                 epochs: int = 30, batch_size: int = 128, lr: float = 3e-3, hidden: tuple[int, ...] = (64, 64), mask_rate: float = 0.25,
                 bounds: Any = None, budget: str | None = None, grad_sample_mode: str = "ghost", random_state: int | None = 0):
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.accountant = accountant
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.hidden = hidden
        self.mask_rate = mask_rate
        self.bounds = bounds
        self.budget = budget
        self.grad_sample_mode = grad_sample_mode
        self.random_state = random_state

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- input handling -----------------------------------------------------------------------------------------
    def _matrix(self, X: Any, fitting: bool) -> tuple[np.ndarray, Any]:
        import pandas as pd

        frame = X if isinstance(X, pd.DataFrame) else None
        if frame is not None:
            bad = [c for c in frame.columns if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
            if bad:
                raise DataFormatError(f"DPMLPImputer imputes numeric/boolean columns; column(s) {', '.join(map(str, bad[:5]))} are not. "
                                      "Encode them (e.g. one-hot) or use medsynth.tabular.Imputer for mixed types.")
            X = frame.astype(float)
        A = validate_data(self, X, reset=fitting, dtype=np.float64, ensure_all_finite="allow-nan")
        if np.isinf(A).any():
            raise DataFormatError("the data contain infinite values; replace them (e.g. by NaN to impute them) first.")
        return A, frame

    def _bounds(self, A: np.ndarray, frame: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        d = A.shape[1]
        if self.bounds is not None:
            if isinstance(self.bounds, dict):
                if frame is None:
                    raise ValueError("bounds given as a dict need a DataFrame (keys are column names); pass a list for arrays.")
                missing = [c for c in frame.columns if c not in self.bounds]
                if missing:
                    raise ValueError(f"bounds lack column(s) {', '.join(map(str, missing[:5]))}")
                b = np.array([self.bounds[c] for c in frame.columns], dtype=float)
            else:
                b = np.asarray(self.bounds, dtype=float)
            if b.shape != (d, 2) or not np.all(b[:, 1] > b[:, 0]):
                raise ValueError(f"bounds must be {d} (low, high) pairs with high > low.")
            return b[:, 0], b[:, 1], True
        with np.errstate(all="ignore"):
            lo, hi = np.nanmin(np.where(np.isnan(A), np.inf, A), 0), np.nanmax(np.where(np.isnan(A), -np.inf, A), 0)
        allnan = ~np.isfinite(lo) | ~np.isfinite(hi)
        lo, hi = np.where(allnan, 0.0, lo), np.where(allnan, 1.0, hi)
        hi = np.where(hi > lo, hi, lo + 1.0)
        return lo, hi, False

    # -- fit ------------------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> DPMLPImputer:
        import torch

        from ..dp import DPConfig, DPGuard, check_dp_inputs, epsilons, make_private, plan_dp

        A, frame = self._matrix(X, fitting=True)
        n, d = A.shape
        if n < 2:
            raise ValueError(f"DPMLPImputer needs at least 2 rows; got 1 sample (n_samples = {n}).")
        if not (isinstance(self.epsilon, int | float) and math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be a finite number > 0 (got {self.epsilon!r}).")
        cfg = DPConfig(epsilon=float(self.epsilon), delta=float(self.delta), max_grad_norm=float(self.max_grad_norm),
                       accountant=self.accountant, grad_sample_mode=self.grad_sample_mode)  # type: ignore[arg-type]
        check_dp_inputs(cfg, n, "table")
        lo, hi, public = self._bounds(A, frame)
        self.low_, self.high_ = lo, hi
        self.columns_ = list(frame.columns) if frame is not None else None
        self.dp_scope_ = ("network weights and column scaling (public bounds)" if public else
                          "network weights only: the column min/max used for scaling come from the data (give bounds= to cover them)")
        M = ~np.isnan(A)
        Z = np.where(M, (np.clip(np.nan_to_num(A), lo, hi) - lo) / (hi - lo), 0.0)
        bs = max(1, min(int(self.batch_size), n))
        epochs = max(1, int(self.epochs))
        plan = plan_dp(cfg, n, bs, epochs)
        seed = 0 if self.random_state is None else int(self.random_state)
        torch.manual_seed(seed)
        net = self._network(d)
        debit_id = None

        def train() -> dict[str, Any]:
            return self._train(net, Z, M, plan, cfg, bs, epochs, seed, make_private, DPGuard)

        if self.budget:
            from ..ledger import BudgetLedger

            with BudgetLedger().spend(self.budget, cfg.epsilon, cfg.delta, step="DPMLPImputer.fit", purpose=f"DP-SGD imputer ({n} rows, {d} columns)",
                                      accountant=cfg.accountant) as debit_id:
                guard = train()
        else:
            guard = train()
        eps = epsilons(plan.noise_multiplier, plan.sample_rate, guard["steps"], cfg.delta)
        self.model_ = net
        self.epsilon_ = float(cfg.epsilon)
        self.delta_ = float(cfg.delta)
        self.epsilon_rdp_, self.epsilon_prv_ = eps["rdp"], eps["prv"]
        self.noise_multiplier_ = plan.noise_multiplier
        self.sample_rate_ = plan.sample_rate
        self.steps_ = guard["steps"]
        self.debit_id_ = debit_id
        return self

    def _network(self, d: int) -> Any:
        from torch import nn

        layers: list[Any] = []
        k = 2 * d
        for h in self.hidden:
            layers += [nn.Linear(k, int(h)), nn.ReLU()]
            k = int(h)
        layers.append(nn.Linear(k, d))
        return nn.Sequential(*layers)

    def _train(self, net: Any, Z: np.ndarray, M: np.ndarray, plan: Any, cfg: Any, bs: int, epochs: int, seed: int, make_private: Any,
               DPGuard: Any) -> dict[str, Any]:
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        z = torch.as_tensor(Z, dtype=torch.float32)
        m = torch.as_tensor(M, dtype=torch.float32)
        g = torch.Generator().manual_seed(seed)
        loader = DataLoader(TensorDataset(z, m), batch_size=bs, shuffle=True, generator=g)

        class Loss(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.reduction = "mean"

            def forward(self, out: Any, target: Any, observed: Any, shown: Any) -> Any:
                w = observed * (1.0 + 3.0 * (1.0 - shown))  # hidden observed cells count 4x
                per = ((out - target) ** 2 * w).sum(1) / w.sum(1).clamp_min(1.0)
                return per if self.reduction == "none" else per.mean() if per.numel() else per.sum()

        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        crit = Loss()
        module, opt, crit, loader, _ = make_private(net, opt, crit, loader, plan, cfg, seed=seed)
        guard = DPGuard(module, opt, cfg.grad_sample_mode)
        mg = torch.Generator().manual_seed(seed + 1)
        for _ in range(epochs):
            for zb, mb in loader:
                keep = (torch.rand(mb.shape, generator=mg) >= float(self.mask_rate)).float() * mb
                opt.zero_grad()
                out = module(torch.cat([zb * keep, keep], 1))
                loss = crit(out, zb, mb, keep)
                loss.backward()
                opt.step()
        summary = guard.finish()
        if hasattr(module, "_close"):
            module._close()
        net.eval()
        return summary

    # -- transform ------------------------------------------------------------------------------------------------
    def transform(self, X: Any) -> Any:
        import torch

        check_is_fitted(self, "model_")
        A, frame = self._matrix(X, fitting=False)
        if frame is not None and self.columns_ is not None and list(frame.columns) != self.columns_:
            raise DataFormatError("the DataFrame's columns differ from the ones seen in fit; pass the same columns in the same order.")
        M = ~np.isnan(A)
        lo, hi = self.low_, self.high_
        Z = np.where(M, (np.clip(np.nan_to_num(A), lo, hi) - lo) / (hi - lo), 0.0)
        with torch.no_grad():
            inp = torch.as_tensor(np.concatenate([Z, M.astype(float)], 1), dtype=torch.float32)
            P = self.model_(inp).numpy().astype(np.float64) if len(inp) else np.zeros_like(Z)
        P = np.clip(P, 0.0, 1.0) * (hi - lo) + lo
        out = np.where(M, A, P)  # observed cells are never changed
        if frame is not None:
            import pandas as pd

            res = pd.DataFrame(out, index=frame.index, columns=frame.columns)
            for c in frame.columns:
                if pd.api.types.is_bool_dtype(frame[c]):
                    res[c] = res[c] >= 0.5
                elif pd.api.types.is_integer_dtype(frame[c]):
                    res[c] = np.rint(res[c]).astype(frame[c].dtype)
            return res
        return out

    def imputed_mask(self, X: Any) -> Any:
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            return X.isna()
        return np.isnan(np.asarray(X, dtype=float))


IMPUTERS.register("dp_mlp", DPMLPImputer)
