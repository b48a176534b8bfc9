"""DP-SGD wrapper: layer validation, noise calibration, accountants, and the guards against silent failures."""

import math

import pytest
import torch
from torch import nn

from medsynth.exceptions import RecipeError
from medsynth.dp import (DPConfig, DPModelError, DPTrainingError, calibrate_noise, check_dp_inputs, epsilons, plan_dp,
                               validate_module)
from medsynth.train.loop import TrainSettings, fit_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # restored after the module, not set at import


def _data(n=300, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return X, (X[:, 0] + X[:, 1] > 0).long()


def test_validator_names_every_bad_layer_with_its_fix():
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.LSTM(8, 8))
    probs = validate_module(m)
    names = {p.name for p in probs}
    assert {"1", "3"} <= names
    assert any("GroupNorm" in p.fix for p in probs if p.name == "1")
    assert any("DPLSTM" in p.fix for p in probs if p.name == "3")
    m.eval()
    assert any("eval mode" in p.problem for p in validate_module(m))
    X, y = _data()
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    cfg = DPConfig(epsilon=3, delta=1e-4)
    with pytest.raises(DPModelError, match="BatchNorm1d"):
        fit_module(net, (X,), y, "multiclass", TrainSettings(epochs=1), dp_plan=plan_dp(cfg, 300, 64, 1), dp=cfg)


@pytest.mark.parametrize("eps,delta,n,match", [(3, 1e-2, 300, "1/n"), (3, 1e-5, 1, "at least 2")])
def test_bad_privacy_parameters(eps, delta, n, match):
    with pytest.raises(RecipeError, match=match):
        check_dp_inputs(DPConfig(epsilon=eps, delta=delta), n)
    with pytest.raises(ValueError):
        DPConfig(epsilon=0)
    with pytest.raises(ValueError):
        DPConfig(epsilon=1, delta=1.0)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_calibration_never_exceeds_the_target(accountant):
    for q, steps in [(0.01, 1000), (0.2, 50)]:
        s = calibrate_noise(2.0, 1e-5, q, steps, accountant)
        e = epsilons(s, q, steps, 1e-5)[accountant]
        assert 2.0 * 0.98 <= e <= 2.0
        # a little less noise would overspend: the calibration is tight
        assert epsilons(s * 0.95, q, steps, 1e-5)[accountant] > 2.0 * 0.98
    both = epsilons(1.0, 0.01, 1000, 1e-5)
    assert both["prv"] < both["rdp"] and math.isfinite(both["prv"])


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_dp_training_reports_both_accountants_and_guards_pass(mode):
    X, y = _data()
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    net[0].bias.requires_grad_(False)  # frozen: must stay unchanged
    frozen_before = net[0].bias.detach().clone()
    cfg = DPConfig(epsilon=4, delta=1e-4, grad_sample_mode=mode)
    s = TrainSettings(epochs=3, batch_size=50, lr=1e-2)
    res = fit_module(net, (X,), y, "multiclass", s, dp_plan=plan_dp(cfg, 300, 50, 3), dp=cfg)
    pv = res.privacy
    assert pv["steps"] == 18 and pv["poisson_sampling"] and pv["grad_sample_mode"] == mode
    assert pv["epsilon_rdp"] <= 4.0 and pv["epsilon_prv"] <= pv["epsilon_rdp"]
    assert pv["guard"]["trainable_changed"] and pv["guard"]["frozen_unchanged"] and pv["guard"]["steps"] == 18
    assert torch.equal(res.model[0].bias, frozen_before)
    assert (res.model(X).argmax(1) == y).float().mean() > 0.7


def test_guard_catches_parameters_that_did_not_train():
    X, y = _data()
    net = nn.Sequential(nn.Linear(6, 2))
    cfg = DPConfig(epsilon=4, delta=1e-4)
    with pytest.raises(DPTrainingError, match="did not change"):
        fit_module(net, (X,), y, "multiclass", TrainSettings(epochs=1, lr=0.0), dp_plan=plan_dp(cfg, 300, 64, 1), dp=cfg)


def test_guard_catches_frozen_weights_changed_outside_dp_sgd():
    X, y = _data()

    class Sneaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(6, 2)
            self.scale = nn.Parameter(torch.ones(2), requires_grad=False)

        def forward(self, x):
            with torch.no_grad():
                self.scale.mul_(1.001)  # an in-place update outside the DP optimizer
            return self.body(x) * self.scale

    cfg = DPConfig(epsilon=4, delta=1e-4)
    with pytest.raises(DPTrainingError, match="frozen parameter"):
        fit_module(Sneaky(), (X,), y, "multiclass", TrainSettings(epochs=1), dp_plan=plan_dp(cfg, 300, 64, 1), dp=cfg)


def test_guard_catches_a_parameter_missing_from_the_dp_optimizer():
    from torch.utils.data import DataLoader, TensorDataset

    from medsynth.dp import DPGuard, make_private

    X, y = _data()
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = torch.optim.SGD(net[2].parameters(), lr=0.1)  # the first layer is trainable but not in the optimizer
    cfg = DPConfig(epsilon=4, delta=1e-4, grad_sample_mode="hooks")
    mod, opt, crit, loader, _ = make_private(net, opt, nn.CrossEntropyLoss(), DataLoader(TensorDataset(X, y), batch_size=64), plan_dp(cfg, 300, 64, 1), cfg)
    with pytest.raises(DPTrainingError, match="not in the DP optimizer"):
        DPGuard(mod, opt, "hooks")
