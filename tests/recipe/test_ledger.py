"""The privacy-budget ledger: debits before training, never overspent, also by two concurrent processes."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from medsynth.exceptions import MedsynthError, PrivacyBudgetExceededError
from medsynth.ledger import BudgetLedger, BudgetNotFoundError


def test_create_debit_and_overspend(tmp_path):
    led = BudgetLedger(tmp_path / "b.sqlite")
    led.create("iu", epsilon=3.0, delta=1e-5)
    d1 = led.debit("iu", 1.0, 1e-6, run_id="r1", step="train", accountant="rdp")
    led.mark(d1, "trained")
    led.debit("iu", 2.0, 1e-6, run_id="r2", step="train")  # exactly what is left: allowed
    b = led.get("iu")
    assert b.epsilon_spent == pytest.approx(3.0) and b.epsilon_left == pytest.approx(0.0) and b.n_debits == 2
    with pytest.raises(PrivacyBudgetExceededError, match="cannot pay"):
        led.debit("iu", 0.01, 0.0)
    assert led.get("iu").n_debits == 2  # the refused debit left no trace
    assert [h["status"] for h in led.history("iu")] == ["trained", "debited"]


def test_delta_is_also_a_limit(tmp_path):
    led = BudgetLedger(tmp_path / "b.sqlite")
    led.create("t", epsilon=100.0, delta=1e-5)
    led.debit("t", 1.0, 1e-5)
    with pytest.raises(PrivacyBudgetExceededError):
        led.debit("t", 1.0, 1e-6)


def test_failure_inside_spend_keeps_the_debit(tmp_path):
    led = BudgetLedger(tmp_path / "b.sqlite")
    led.create("t", epsilon=2.0, delta=1e-5)
    with pytest.raises(RuntimeError), led.spend("t", 1.5, 1e-6, step="x"):
        raise RuntimeError("crash mid-training")
    h = led.history("t")
    assert h[0]["status"] == "failed" and "RuntimeError" in h[0]["detail"]
    assert led.get("t").epsilon_left == pytest.approx(0.5)


@pytest.mark.parametrize("eps,delta", [(0, 1e-5), (-1, 1e-5), (float("nan"), 1e-5), (1.0, 1.0), (1.0, -0.1)])
def test_bad_values(tmp_path, eps, delta):
    led = BudgetLedger(tmp_path / "b.sqlite")
    with pytest.raises(ValueError):
        led.create("t", eps, delta)


def test_unknown_and_duplicate_budget(tmp_path):
    led = BudgetLedger(tmp_path / "b.sqlite")
    with pytest.raises(BudgetNotFoundError, match="medsynth budget create"):
        led.debit("nope", 1.0, 0.0)
    led.create("t", 1.0, 1e-5)
    assert led.create("t", 1.0, 1e-5, exist_ok=True).name == "t"
    with pytest.raises(MedsynthError, match="never changed"):
        led.create("t", 2.0, 1e-5, exist_ok=True)


def _hammer(path: str, n: int, q) -> None:  # noqa: ANN001
    led = BudgetLedger(path)
    ok = 0
    for _ in range(n):
        try:
            led.debit("shared", 0.1, 0.0, run_id="p")
            ok += 1
        except PrivacyBudgetExceededError:
            pass
    q.put(ok)


def test_two_processes_cannot_overspend_together(tmp_path):
    path = str(tmp_path / "b.sqlite")
    BudgetLedger(path).create("shared", epsilon=5.0, delta=1e-5)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(path, 40, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    granted = q.get() + q.get()
    b = BudgetLedger(path).get("shared")
    assert granted == b.n_debits == 50  # 5.0 / 0.1, whichever process got them
    assert b.epsilon_spent <= 5.0 + 1e-9
