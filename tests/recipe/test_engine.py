import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import tests.recipe.plugin_steps  # noqa: F401  (registers test_make / test_slow)
from medsynth.data.io import read_records
from medsynth.exceptions import MedsynthError, RecipeError, RunLockedError
from medsynth.recipe.engine import make_test_context, plan_recipe, run_recipe
from medsynth.recipe.rundir import RunDir
from medsynth.recipe.schema import load_recipe
from medsynth.recipe.verify import verify_run

ROOT = Path(__file__).resolve().parents[2]


def _recipe(**slow):
    return {"name": "t", "seed": 7, "steps": [
        {"type": "test_make", "n": 12},
        {"type": "select", "where": {"split": "train"}},
        {"type": "test_slow", "batch_size": 2, **slow},
    ]}


def test_a_step_says_its_name_once_in_its_config():
    from typing import Literal

    from medsynth.recipe.step import Step, StepConfig
    from medsynth.registry import STEPS

    class NamedConfig(StepConfig):
        type: Literal["named_once"] = "named_once"

    class Named(Step):
        Config = NamedConfig

        def run(self, ctx):  # noqa: ANN001, ANN202
            return None

    assert Named.type == "named_once"
    assert all(STEPS.get(n).type == n == STEPS.get(n).Config.model_fields["type"].default for n in STEPS.names())
    with pytest.raises(TypeError, match="say the name once"):
        class Clash(Step):  # noqa: F841
            type = "other"
            Config = NamedConfig

            def run(self, ctx):  # noqa: ANN001, ANN202
                return None


def test_validate_reports_every_problem_at_once():
    bad = {"name": "bad name!", "seeed": 1, "steps": [
        {"type": "test_make", "n": "many", "colour": 1},
        {"type": "selekt"},
        {"n": 3},
        {"type": "select", "input": "nowhere"},
    ]}
    with pytest.raises(RecipeError) as ei:
        load_recipe(bad)
    locs = [loc for loc, _ in ei.value.problems]
    msg = str(ei.value)
    assert "seeed" in msg and "name" in locs
    assert any(loc.startswith("steps.0(test_make).n") for loc in locs)
    assert any("colour" in loc for loc in locs)
    assert any(loc == "steps.1.type" for loc in locs) and "Did you mean 'select'" in msg
    assert any(loc == "steps.2.type" for loc in locs)
    assert len(ei.value.problems) >= 6


def test_dataset_wiring_checked():
    with pytest.raises(RecipeError, match="not produced by an earlier step"):
        load_recipe({"name": "t", "steps": [{"type": "test_make"}, {"type": "select", "input": "nope"}]})


def test_overrides_by_name_and_index():
    r = load_recipe(_recipe(), ["steps.test_make.n=5", "steps.2.batch_size=3", "seed=11"])
    assert r.steps[0].config.n == 5 and r.steps[2].config.batch_size == 3 and r.config.seed == 11
    with pytest.raises(RecipeError, match="unknown key"):
        load_recipe(_recipe(), ["steps.test_make.bogus=1"])
    with pytest.raises(RecipeError):
        load_recipe(_recipe(), ["steps.test_make.n=not-a-number"])


def test_missing_recipe_file_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    p = tmp_path / "r.yaml"
    p.write_text("name: x\nsteps: [\n  - type: a\n")
    with pytest.raises(RecipeError, match="not valid YAML at line"):
        load_recipe(p)


def test_run_resume_cache_and_verify(tmp_path, medsynth_home):
    res = run_recipe(load_recipe(_recipe()), run_dir=tmp_path / "run", show_progress=False)
    assert res.status == "completed"
    out = read_records(res.run_dir / "steps" / "02_test_slow" / "test_slow.jsonl")
    assert len(out) == 9 and all(r.provenance.seed_record_ids for r in out)
    rep = json.loads((res.run_dir / "report.json").read_text())
    assert rep["quarantine"]["total"] == 1 and rep["quarantine"]["by_reason"] == {"test_reason": 1}
    assert all("how" in f for s in rep["steps"] for f in s["figures"])
    # the quarantined record is kept in the run dir with its reason
    q = (res.run_dir / "quarantine" / "02_test_slow.jsonl").read_text().splitlines()
    assert json.loads(q[0])["reason"] == "test_reason"
    assert verify_run(res.run_dir, require_signature=False).ok
    # second run in a new dir: every step comes from the content-addressed cache, same bytes
    res2 = run_recipe(load_recipe(_recipe()), run_dir=tmp_path / "run2", show_progress=False)
    assert [s["how"] for s in res2.steps] == ["cache", "cache", "cache"]
    assert (res2.run_dir / "steps/02_test_slow/test_slow.jsonl").read_bytes() == (res.run_dir / "steps/02_test_slow/test_slow.jsonl").read_bytes()
    # a changed config invalidates the cache of that step and of nothing before it
    res3 = run_recipe(load_recipe(_recipe(), ["seed=8"]), run_dir=tmp_path / "run3", show_progress=False)
    assert [s["how"] for s in res3.steps] == ["ran", "ran", "ran"]
    # tampering is detected
    f = res.run_dir / "steps" / "02_test_slow" / "test_slow.jsonl"
    f.write_text(f.read_text().replace("record", "recorx", 1))
    v = verify_run(res.run_dir, require_signature=False)
    assert not v.ok and any("changed file" in p for p in v.problems)


def test_failure_then_resume_skips_committed_batches(tmp_path, medsynth_home):
    rec = load_recipe(_recipe(fail_at_batch=2))
    with pytest.raises(MedsynthError):
        run_recipe(rec, run_dir=tmp_path / "run", show_progress=False, use_cache=False)
    rd = RunDir(tmp_path / "run")
    assert rd.committed_batches("test_slow") == {0, 1}
    rd.close()
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rep["status"] == "failed"
    os.environ["TEST_NO_FAIL"] = "1"
    try:
        res = run_recipe(rec, resume=str(tmp_path / "run"), show_progress=False, use_cache=False)
    finally:
        del os.environ["TEST_NO_FAIL"]
    assert res.status == "completed"
    assert [s["how"] for s in res.steps] == ["resumed", "resumed", "ran"]
    ref = run_recipe(load_recipe(_recipe()), run_dir=tmp_path / "ref", show_progress=False, use_cache=False)
    a = [r.model_dump(exclude={"provenance": {"created_at"}}) for r in read_records(res.run_dir / "steps/02_test_slow/test_slow.jsonl")]
    b = [r.model_dump(exclude={"provenance": {"created_at"}}) for r in read_records(ref.run_dir / "steps/02_test_slow/test_slow.jsonl")]
    assert a == b


def test_lock_refuses_second_run(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.acquire()
    try:
        other = RunDir(tmp_path / "run")
        with pytest.raises(RunLockedError):
            other.acquire()
    finally:
        rd.release()


def test_dry_run_plan():
    rows = plan_recipe(load_recipe(_recipe()))
    assert [r["step"] for r in rows] == ["test_make", "select", "test_slow"]
    assert rows[0]["records_out"] == 12


def test_make_test_context(tmp_path):
    from medsynth.data.records import Record

    ctx = make_test_context(tmp_path, datasets={"a": [Record(id="1", text="x")]})
    assert [r.id for r in ctx.input()] == ["1"]
    ctx.add_figure("f", 1, "test")
    with pytest.raises(ValueError):
        ctx.add_figure("g", 1, "")


def _cli(*args, env=None, **kw):
    e = dict(os.environ, MEDSYNTH_PLUGINS="tests.recipe.plugin_steps", PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "medsynth.cli", *args], cwd=ROOT, env=e, capture_output=True, text=True, **kw)


def test_kill9_mid_step_then_resume_equals_uninterrupted(tmp_path, medsynth_home):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(sleep=0.4)))
    env = dict(os.environ, MEDSYNTH_PLUGINS="tests.recipe.plugin_steps", PYTHONPATH=str(ROOT), MEDSYNTH_HOME=str(medsynth_home))
    run_dir = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-m", "medsynth.cli", "run", str(recipe), "--run-dir", str(run_dir), "--no-cache"],
                         cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = run_dir / "ledger.sqlite"
    deadline = time.time() + 60
    n = 0
    while time.time() < deadline:
        if db.exists():
            try:
                n = sqlite3.connect(db, timeout=1).execute("SELECT COUNT(*) FROM batches WHERE step='test_slow'").fetchone()[0]
            except sqlite3.Error:
                n = 0
            if n >= 2:
                break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert n >= 2, "the run did not commit batches in time"
    r = _cli("run", str(recipe), "--resume", str(run_dir), "--no-cache", env={"MEDSYNTH_HOME": str(medsynth_home)})
    assert r.returncode == 0, r.stderr[-2000:]
    r2 = _cli("run", str(recipe), "--run-dir", str(tmp_path / "clean"), "--no-cache", env={"MEDSYNTH_HOME": str(medsynth_home)})
    assert r2.returncode == 0, r2.stderr[-2000:]
    a = [r.model_dump(exclude={"provenance": {"created_at"}}) for r in read_records(run_dir / "steps/02_test_slow/test_slow.jsonl")]
    b = [r.model_dump(exclude={"provenance": {"created_at"}}) for r in read_records(tmp_path / "clean/steps/02_test_slow/test_slow.jsonl")]
    assert a == b and len(a) == 9
    assert len({r["id"] for r in a}) == len(a)
    q = (run_dir / "quarantine" / "02_test_slow.jsonl").read_text().splitlines()
    assert len(q) == 1


def test_cli_validate_lists_problems(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"name": "x", "steps": [{"type": "test_make", "n": "x"}, {"type": "nope"}]}))
    r = _cli("validate", str(p))
    assert r.returncode == 2
    assert "steps.0(test_make).n" in r.stderr and "steps.1.type" in r.stderr


def test_a_relative_runs_root_works_as_the_readme_runs_it(tmp_path, monkeypatch):
    """`medsynth run recipe.yaml` in a project folder writes to ./runs: a relative run dir. Every step's outputs are
    confined (resolved) paths; the run must still finish, verify and resume from a relative path."""
    monkeypatch.chdir(tmp_path)
    res = run_recipe(load_recipe(_recipe()), runs_root="runs", show_progress=False, use_cache=False)
    assert res.status == "completed"
    run = Path(res.run_dir)
    assert run.is_relative_to(tmp_path.resolve() / "runs") and run.is_absolute()
    step = json.loads(next((run / "steps").glob("*test_make*/step.json")).read_text(encoding="utf-8"))
    assert step["outputs"] and not any(Path(v).is_absolute() for v in step["outputs"].values())
    again = run_recipe(load_recipe(_recipe()), resume=os.path.relpath(run, tmp_path), runs_root="runs", show_progress=False, use_cache=False)
    assert again.status == "completed" and Path(again.run_dir) == run
