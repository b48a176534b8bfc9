"""One regression test per defect of the hostile-input probe (issue 17). Each failed on the code before the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tests.recipe.plugin_steps  # noqa: F401  (registers test_make / test_slow)
from medsynth.data.io import read_records
from medsynth.data.records import Record
from medsynth.exceptions import RecipeError
from medsynth.recipe.engine import make_test_context, run_recipe
from medsynth.recipe.schema import load_recipe
from medsynth.recipe.verify import verify_run
from tests.hardening.harness import ROOT, run_cli

NAME, MRN, DOB = "Quillon Vandermeer", "MRN-88412077", "1957-03-09"


# -- 1. scrubbing covers every field -----------------------------------------------------------------------------
def test_scrub_cli_csv_other_columns_never_pass_through(tmp_path, medsynth_home):
    p = tmp_path / "notes.csv"
    p.write_text(f"id,text,patient_name,mrn,ward\n1,Chest pain with no fever.,{NAME},{MRN},3B\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    r = run_cli("scrub", "--in", p, "--out", out, "--keep-fields", "ward")
    assert r.clean and r.code == 0, r.text
    body = out.read_text()
    assert NAME not in body and MRN not in body and json.loads(body) == {"id": "1", "text": "Chest pain with no fever.", "ward": "3B"}
    assert "patient_name (1 notes)" in r.text and "mrn (1 notes)" in r.text and NAME not in r.text


def test_scrub_cli_jsonl_scrub_fields_are_deidentified(tmp_path, medsynth_home):
    p = tmp_path / "notes.jsonl"
    p.write_text(json.dumps({"id": "a", "text": "Seen today.", "history": "Seen by Dr. Alvarez (MRN: 88412077) on 03/14/2020.",
                             "dob": DOB, "extra": {"nested": NAME}}) + "\n")
    out = tmp_path / "o.jsonl"
    r = run_cli("scrub", "--in", p, "--out", out, "--scrub-fields", "history")
    assert r.clean and r.code == 0, r.text
    row = json.loads(out.read_text())
    assert set(row) == {"id", "text", "history"}
    assert "88412077" not in row["history"] and "03/14/2020" not in row["history"] and "Alvarez" not in row["history"]
    r = run_cli("scrub", "--in", p, "--out", out, "--scrub-fields", "history", "--keep-fields", "history")
    assert r.code == 2 and "both kept and scrubbed" in r.text


def test_scrub_step_drops_meta_and_feeds_the_replay_audit(tmp_path):
    from medsynth.scrub.fields import load_phi_strings
    from medsynth.steps.scrub import ScrubConfig, ScrubStep

    recs = [Record(id="MRN-1", text="Follow-up chest film.", meta={"patient_name": NAME, "mrn": MRN, "split": "train", "note": "by Dr. Alvarez"})]
    step = ScrubStep(ScrubConfig(mode="mask", keep_fields=["split"], scrub_fields=["note"], hash_ids=True))
    ctx = make_test_context(tmp_path, {"raw": recs}, step=step, name="seeds")
    step.run(ctx)
    out = read_records(ctx.step_dir / "seeds.jsonl")[0]
    assert out.meta == {"split": "train", "note": "by Dr. [NAME]"}
    assert out.id != "MRN-1" and out.id.startswith("h")
    phi = set(load_phi_strings(ctx.step_dir))
    assert {NAME, MRN, "MRN-1"} <= phi  # the replay audit now searches the synthetic text for them
    fig = {f["name"]: f["value"] for f in ctx.figures}
    assert fig["fields_dropped"] == {"patient_name": 1, "mrn": 1}


# -- 2. names are identifiers: nothing is written outside the run dir --------------------------------------------
@pytest.mark.parametrize("field,value", [("name", "/tmp/medsynth_escape_abs"), ("name", "../../escaped"), ("output", "../../../../escaped"),
                                         ("output", "a/b"), ("name", ".."), ("input", "../x")])
def test_step_names_cannot_be_paths(tmp_path, field, value):
    steps = [{"type": "test_make", "n": 3}, {"type": "select", field: value}]
    with pytest.raises(RecipeError) as ei:
        load_recipe({"name": "t", "steps": steps})
    assert any("identifier" in msg for _, msg in ei.value.problems)


def test_rundir_refuses_an_escaping_step_name_even_without_the_schema(tmp_path):
    from medsynth.recipe.rundir import RunDir

    rd = RunDir(tmp_path / "run")
    with pytest.raises(ValueError):
        rd.step_dir(0, "../../escaped")
    assert not (tmp_path / "escaped").exists()


# -- 3. verify trusts only trusted keys and covers every file -----------------------------------------------------
def _finished_run(tmp_path, home):
    res = run_recipe(load_recipe({"name": "t", "seed": 1, "steps": [{"type": "test_make", "n": 4}]}), run_dir=tmp_path / "run", show_progress=False)
    assert verify_run(res.run_dir, home=home).ok
    return res.run_dir


def test_verify_rejects_a_run_resigned_with_another_key(tmp_path, medsynth_home):
    from medsynth.audit.sign import sign_manifest
    from medsynth.recipe.engine import write_manifest

    run = _finished_run(tmp_path, medsynth_home)
    f = run / "steps" / "00_test_make" / "test_make.jsonl"
    f.write_text(f.read_text().replace("record number 1", "record number X"))
    sign_manifest(write_manifest(run), tmp_path / "attacker_home")
    v = verify_run(run, home=medsynth_home)
    assert not v.ok and any("do not trust" in p for p in v.problems)
    r = run_cli("verify", run, env={"MEDSYNTH_HOME": str(medsynth_home)})
    assert r.code == 1 and r.clean


@pytest.mark.parametrize("name", ["ledger.sqlite-wal", "ledger.sqlite-shm", "steps/00_test_make/x.jsonl-wal", ".hidden", "steps/00_test_make/.lock"])
def test_verify_has_no_name_based_exceptions(tmp_path, medsynth_home, name):
    run = _finished_run(tmp_path, medsynth_home)
    (run / name).write_text("added")
    v = verify_run(run, home=medsynth_home)
    assert not v.ok and any("not in the manifest" in p for p in v.problems)


# -- 4. resume refuses a different recipe, and changes nothing -----------------------------------------------------
def test_resume_with_a_different_recipe_is_refused_and_the_run_is_untouched(tmp_path, medsynth_home):
    run = _finished_run(tmp_path, medsynth_home)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    other = load_recipe({"name": "t", "seed": 1, "steps": [{"type": "test_make", "n": 5}]})
    with pytest.raises(RecipeError, match=r"different recipe.*steps\.0"):
        run_recipe(other, resume=str(run), show_progress=False)
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before and verify_run(run, home=medsynth_home).ok
    # the same recipe resumes fine
    same = load_recipe({"name": "t", "seed": 1, "steps": [{"type": "test_make", "n": 4}]})
    assert run_recipe(same, resume=str(run), show_progress=False).status == "completed"
    assert verify_run(run, home=medsynth_home).ok


# -- 5. outputs never overwrite inputs ---------------------------------------------------------------------------
def test_scrub_and_impute_refuse_to_overwrite_their_input(tmp_path, medsynth_home):
    notes = tmp_path / "n.jsonl"
    notes.write_text(json.dumps({"id": "1", "text": f"Seen by Dr. {NAME}"}) + "\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(notes)
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,\n2,3\n,4\n5,6\n")
    before = notes.read_bytes(), table.read_bytes()
    for args in (["scrub", "--in", notes, "--out", notes], ["scrub", "--in", notes, "--out", link],
                 ["impute", "--in", table, "--out", table], ["impute", "--in", table, "--out", tmp_path / "o.csv", "--mask-out", table]):
        r = run_cli(*args)
        assert r.code == 2 and r.clean and "input" in r.text, (args, r.text)
    assert (notes.read_bytes(), table.read_bytes()) == before
    r = run_cli("impute", "--in", table, "--out", tmp_path / "x.xlsx")
    assert r.code == 2 and "*.csv or *.parquet" in r.text and not (tmp_path / "x.xlsx").exists()


# -- 6. concurrent runs sharing MEDSYNTH_HOME ------------------------------------------------------------------------
def _store_many(args):
    from medsynth.recipe.engine import _store_in_cache

    src, dst, n = args
    for _ in range(n):
        _store_in_cache(Path(src), Path(dst))
    return True


def test_cache_store_is_atomic_across_processes(tmp_path):
    import multiprocessing as mp

    src = tmp_path / "step"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}.jsonl").write_text("x" * 10_000)
    (src / "step.json").write_text("{}")
    dst = tmp_path / "cache" / "key"
    with mp.get_context("spawn").Pool(4) as pool:
        assert all(pool.map(_store_many, [(str(src), str(dst), 5)] * 4))
    assert sorted(p.name for p in dst.iterdir()) == sorted(p.name for p in src.iterdir())
    assert [p.name for p in dst.parent.iterdir()] == ["key"]  # no temporary folder left behind


def test_two_runs_sharing_a_home_both_complete(tmp_path, medsynth_home):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "t", "seed": 3, "steps": [{"type": "test_make", "n": 30}, {"type": "test_slow", "batch_size": 5, "sleep": 0.05}]}))
    env = {**os.environ, "MEDSYNTH_HOME": str(medsynth_home), "MEDSYNTH_PLUGINS": "tests.recipe.plugin_steps"}
    procs = [subprocess.Popen([sys.executable, "-m", "medsynth.cli", "run", str(recipe), "--run-dir", str(tmp_path / f"run{i}")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-400:] for o in outs]
    a, b = ([(r.id, r.text) for r in read_records(tmp_path / f"run{i}" / "steps" / "01_test_slow" / "test_slow.jsonl")] for i in range(2))
    assert a == b and len(a) == 30


# -- 7. the server: see tests/text/test_serve.py (real HTTP server) ------------------------------------------------

# -- 8. errors instead of tracebacks --------------------------------------------------------------------------------
def test_no_tracebacks_for_the_probed_inputs(tmp_path, medsynth_home):
    header_only = tmp_path / "h.csv"
    header_only.write_text("a,b,c\n")
    empty_manifest = tmp_path / "run_empty"
    empty_manifest.mkdir()
    (empty_manifest / "manifest.json").write_text(json.dumps({"files": []}))
    no_id = tmp_path / "run_noid"
    no_id.mkdir()
    (no_id / "report.json").write_text(json.dumps({"recipe": "x", "status": "completed", "steps": []}))
    cases = [(["budget", "create", "z", "--epsilon", "0", "--delta", "1e-5"], 2, "epsilon"),
             (["budget", "create", "z", "--epsilon", "1", "--delta", "1"], 2, "delta"),
             (["budget", "create", "z", "--epsilon", "nan", "--delta", "1e-5"], 2, "epsilon"),
             (["budget", "create", "", "--epsilon", "1", "--delta", "1e-5"], 2, "non-empty name"),
             (["validate", tmp_path], 2, "is a directory"),
             (["impute", "--in", header_only, "--out", tmp_path / "o.csv"], 2, "no rows"),
             (["verify", empty_manifest], 1, "manifest"),
             (["report", no_id], 1, "run_id")]
    for args, code, words in cases:
        r = run_cli(*args)
        assert r.clean and r.code == code and words in r.text, (args, r.code, r.crash, r.text[-300:])


# -- 9. every problem at once ----------------------------------------------------------------------------------------
def test_schema_problems_do_not_hide_wiring_and_missing_files(tmp_path):
    bad = {"name": "t", "steps": [{"type": "test_make", "n": "many"}, {"type": "select", "input": "nowhere"},
                                  {"type": "load", "path": str(tmp_path / "missing.jsonl")}]}
    with pytest.raises(RecipeError) as ei:
        load_recipe(bad)
    locs = " ".join(loc for loc, _ in ei.value.problems)
    assert "steps.0(test_make).n" in locs and "steps.1(select).input" in locs and "steps.2(load).path" in locs


def test_a_set_syntax_error_does_not_hide_other_override_problems():
    with pytest.raises(RecipeError) as ei:
        load_recipe({"name": "t", "steps": [{"type": "test_make"}]}, ["no-equals-sign", "steps.nosuchstep.n=3", "steps.0.n=[unclosed"])
    locs = [loc for loc, _ in ei.value.problems]
    assert "--set no-equals-sign" in locs and "--set steps.nosuchstep.n" in locs and "--set steps.0.n" in locs


# -- 10. messages that do not mislead ---------------------------------------------------------------------------------
def test_bom_is_not_a_malformed_line_and_skips_are_counted(tmp_path, medsynth_home):
    p = tmp_path / "bom.jsonl"
    p.write_bytes("\ufeff".encode() + (json.dumps({"id": "1", "text": "fine"}) + "\n" + json.dumps({"id": "2", "text": ""}) + "\n").encode())
    r = run_cli("scrub", "--in", p, "--out", tmp_path / "o.jsonl")
    assert r.code == 0 and "malformed line" not in r.text and "0 input record(s) skipped" in r.text, r.text


def test_lock_error_does_not_suggest_resume(tmp_path, medsynth_home):
    from filelock import FileLock

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "t", "steps": [{"type": "test_make", "n": 2}]}))
    (tmp_path / "run").mkdir()
    with FileLock(str(tmp_path / "run" / ".lock")):
        r = run_cli("run", recipe, "--run-dir", tmp_path / "run", env={"MEDSYNTH_PLUGINS": "tests.recipe.plugin_steps"})
    assert r.code == 1 and "Another medsynth process" in r.text and "--resume" not in r.text


def test_impute_all_missing_names_the_cli_flag(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,\n2,\n3,\n")
    r = run_cli("impute", "--in", p, "--out", tmp_path / "o.csv")
    assert r.code == 2 and "--empty-columns keep" in r.text and "Imputer(" not in r.text


def test_budget_show_and_history_do_not_create_the_ledger(medsynth_home):
    for args in (["budget", "show"], ["budget", "history"], ["budget", "show", "--json"]):
        r = run_cli(*args)
        assert r.clean and r.code == 0, r.text
    assert not (medsynth_home / "budget.sqlite").exists()
    r = run_cli("budget", "show", "nope")
    assert r.code == 2 and "no privacy budget named 'nope'" in r.text and not (medsynth_home / "budget.sqlite").exists()


def test_record_ids_are_hashed_in_messages(tmp_path):
    from medsynth.data.records import id_ref
    from medsynth.exceptions import DataFormatError
    from medsynth.text.export import export_records

    rec = Record(id=MRN, text="abc", spans=[{"start": 0, "end": 2, "label": "X", "text": "zz"}])
    with pytest.raises(DataFormatError) as ei:
        export_records([rec], tmp_path / "e", ["jsonl"])
    assert MRN not in str(ei.value) and id_ref(MRN) in str(ei.value)


def test_main_turns_an_unforeseen_error_into_one_line_without_its_message(monkeypatch, capsys):
    """The last resort of `medsynth.cli.main`: exit 1, the exception type, never its message (it could hold data)."""
    import medsynth.cli as cli

    def boom() -> None:
        raise RuntimeError(f"record text {NAME}")

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as ei:
        cli.main()
    err = capsys.readouterr().err
    assert ei.value.code == 1 and "unexpected internal error (RuntimeError)" in " ".join(err.split()) and NAME not in err


def test_corrupt_signing_key_is_a_clear_error(tmp_path):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    (home / "keys" / "medsynth_ed25519.pem").write_text("not a key")
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "keys", "show"], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "MEDSYNTH_HOME": str(home)}, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not an Ed25519 private key" in " ".join(r.stderr.split())
    shutil.rmtree(home)


def test_hashed_ids_need_the_machines_secret(tmp_path, monkeypatch):
    """Hashed ids are an HMAC under a per-home secret: a 7-digit MRN cannot be recovered by hashing every candidate
    with the (public) seed alone, and another home maps the same id elsewhere."""
    import hashlib

    from medsynth.scrub.fields import hashed_id

    monkeypatch.setenv("MEDSYNTH_HOME", str(tmp_path / "a"))
    h1 = hashed_id("1234567", 0)
    assert h1 == hashed_id("1234567", 0) and h1 != "h" + hashlib.sha256(b"0|1234567").hexdigest()[:16]
    assert oct((tmp_path / "a" / "keys" / "id_hash.key").stat().st_mode)[-3:] == "600"
    monkeypatch.setenv("MEDSYNTH_HOME", str(tmp_path / "b"))
    assert hashed_id("1234567", 0) != h1
