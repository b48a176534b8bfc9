"""The adapt step end to end on a tiny model folder: outputs, adapter folder, canaries, DP debit, figures, CLI."""

import json

import pytest

from medsynth.data.records import Record
from medsynth.recipe.engine import make_test_context
from medsynth.ledger import BudgetLedger
from medsynth.registry import STEPS
from tests.helpers import CORPUS


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _recs(prefix, n):
    return [Record(id=f"{prefix}{i}", text=CORPUS[i % len(CORPUS)].split("\n")[-1], labels=["normal"]) for i in range(n)]


def test_adapt_step_writes_adapter_outputs_and_debits_budget(tmp_path, tiny_model_dir):
    cls = STEPS.get("adapt")
    cfg = cls.Config.model_validate({"type": "adapt", "name": "adapt", "model": str(tiny_model_dir), "dtype": "float32",
                                     "method": {"type": "lora", "target_modules": ["q_proj", "v_proj"]},
                                     "train": {"epochs": 2, "batch_size": 4, "learning_rate": 1e-2},
                                     "canaries": {"n": 2, "repeats": [1, 3], "digits": 4},
                                     "dp": {"epsilon": 5.0, "delta": 1e-3, "budget": "seeds"}, "holdout": "holdout", "holdout_n": 4})
    step = cls(cfg)
    assert step.extra_outputs() == ["adapt_train", "adapt_canaries"]
    ctx = make_test_context(tmp_path, {"seeds": _recs("s", 8), "holdout": _recs("h", 6)}, inputs=["seeds"], step=step, name="adapt")
    BudgetLedger(ctx.home / "budget.sqlite").create("seeds", epsilon=6.0, delta=1e-2)
    step.run(ctx)
    from medsynth.data.io import read_records

    main = read_records(ctx.step_dir / "adapt.jsonl")
    assert [r.id for r in main] == [f"s{i}" for i in range(8)]
    sha = main[0].meta["adapted_by"]["adapter_sha256"]
    train = read_records(ctx.step_dir / "adapt_train.jsonl")
    cans = read_records(ctx.step_dir / "adapt_canaries.jsonl")
    assert len(train) == 8 + 2 and len(cans) == 2 and all("canary" in c.meta for c in cans)
    man = json.loads((ctx.step_dir / "adapter" / "medsynth_adapter.json").read_text())
    assert man["adapter_sha256"] == sha and man["n_training_documents"] == 8 + 1 + 3
    assert all("secret" not in json.dumps(c) for c in man["canaries"])
    figs = {f["name"]: f for f in ctx.figures}
    assert figs["adapter_sha256"]["value"] == sha
    assert 0 < figs["dp_epsilon"]["value"] <= 5.0 + 0.05 and "debited" in figs["dp_epsilon"]["how"]
    assert {"holdout_perplexity_base", "holdout_perplexity_adapted", "train_perplexity_adapted", "canaries_inserted"} <= set(figs)
    assert ctx.sections["loss_curve"]["plot"]["kind"] == "lines"
    h = BudgetLedger(ctx.home / "budget.sqlite").history("seeds")
    assert len(h) == 1 and h[0]["step"] == "adapt" and h[0]["status"] == "trained"
    # the generate/audit steps load it with `adapter: step:adapt`
    from medsynth.text.backends.transformers import TransformersBackend

    b = TransformersBackend(model=str(tiny_model_dir), dtype="float32", adapter="step:adapt", run_dir=str(ctx.run_dir))
    assert b.adapter_sha256 == sha


def test_adapt_check_reports_every_problem():
    from medsynth.recipe.schema import load_recipe
    from medsynth.exceptions import RecipeError

    rec = {"name": "x", "seed": 1, "steps": [
        {"type": "load", "name": "seeds", "path": "nope.jsonl"},
        {"type": "adapt", "name": "adapt", "model": "no-such-model", "dp": {"epsilon": 3}, "heldout": "missing",
         "template": "no placeholder"}]}
    with pytest.raises(RecipeError) as e:
        load_recipe(rec)
    msg = str(e.value)
    for frag in ["unknown model 'no-such-model'", "privacy.budget", "'missing'", "{text}"]:
        assert frag in msg, msg


def test_adapt_cli(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from medsynth.cli import app
    from medsynth.data.io import write_records

    write_records(_recs("s", 6), tmp_path / "seeds.jsonl")
    r = CliRunner().invoke(app, ["adapt", "--in", str(tmp_path / "seeds.jsonl"), "--out", str(tmp_path / "out"), "--model",
                                 str(tiny_model_dir), "--method", "prefix", "--epochs", "1", "--batch-size", "3",
                                 "--canaries", "1", "--canary-digits", "3"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["method"] == "prefix" and (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    assert (tmp_path / "out" / "canaries.jsonl").exists()


def test_adapt_cli_spells_epsilon_like_every_command(tmp_path, tiny_model_dir):
    """`--epsilon/--delta` as in `medsynth train` and `budget create` (`--dp-epsilon` is the old spelling); DP
    without a budget is refused before anything is trained."""
    from typer.testing import CliRunner

    from medsynth.cli import app
    from medsynth.data.io import write_records

    write_records(_recs("s", 6), tmp_path / "seeds.jsonl")
    for flag in ("--epsilon", "--dp-epsilon"):
        r = CliRunner().invoke(app, ["adapt", "--in", str(tmp_path / "seeds.jsonl"), "--out", str(tmp_path / "out"), "--model",
                                     str(tiny_model_dir), flag, "2", "--delta", "1e-5"])
        assert r.exit_code != 0 and "--budget" in r.output, r.output
        assert not (tmp_path / "out" / "adapter").exists()
