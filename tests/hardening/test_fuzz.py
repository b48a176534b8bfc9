"""Fuzz and adversarial suite (issue 17): random bytes and malformed JSONL/CSV/YAML into every file-reading command,
path-like strings into every name field of every step, PHI planted in every field and input format, and a
manifest/signature tampering matrix. Every outcome must be exit 0/1/2 with no traceback."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.recipe.plugin_steps  # noqa: F401  (registers test_make)
from medsynth.paths import check_name
from tests.hardening.fuzz_cases import CASES, PATHLIKE
from tests.hardening.harness import run_cli

# examples per command: enough to cover each input family, small enough for the default suite (≈1 min in all)
EXAMPLES = {"impute csv": 25, "impute parquet": 15, "train": 15, "audit files": 15}


@pytest.fixture(scope="module", autouse=True)
def _isolated_home():
    from tests.helpers import isolated_home

    home = str(isolated_home(Path(tempfile.mkdtemp(prefix="medsynth-fuzz-home-"))))
    old = os.environ.get("MEDSYNTH_HOME")
    os.environ["MEDSYNTH_HOME"] = home
    yield Path(home)
    if old is None:
        os.environ.pop("MEDSYNTH_HOME", None)
    else:
        os.environ["MEDSYNTH_HOME"] = old
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("name,strategy,build", CASES, ids=[c[0] for c in CASES])
def test_every_command_ends_cleanly_on_hostile_input(name, strategy, build):
    crashes: list[str] = []

    @settings(max_examples=EXAMPLES.get(name, 40), deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy)
    def probe(x):
        with tempfile.TemporaryDirectory() as d:
            r = run_cli(*build(x, Path(d)))
            if not r.clean:
                crashes.append(f"{r.crash or r.code}: {r.text[-200:]}")
            assert r.clean, (name, r.crash, r.code, r.text[-400:])

    probe()
    assert not crashes


def _registered_step_types():
    from medsynth.registry import STEPS, load_plugins

    load_plugins()
    return sorted(STEPS.names())


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(stype=st.sampled_from(_registered_step_types()), field=st.sampled_from(["name", "output", "input"]),
       value=st.one_of(st.sampled_from(PATHLIKE), st.text(max_size=40)))
def test_path_like_names_in_every_step_are_refused(stype, field, value):
    from medsynth.exceptions import RecipeError
    from medsynth.recipe.schema import load_recipe

    try:
        check_name(value)
        ok = True
    except ValueError:
        ok = False
    steps = [{"type": "test_make", "n": 2}, {"type": stype, field: value}]
    try:
        loaded = load_recipe({"name": "t", "steps": steps}, check_resources=False)
    except RecipeError as e:
        problems = [loc for loc, _ in e.problems if loc.startswith(f"steps.1({stype}).{field}")]
        if not ok:  # a non-identifier must be reported at its own field (an identifier may still fail on other fields)
            assert problems, (stype, field, value, e.problems)
        return
    assert ok, (stype, field, value)  # accepted only if it is an identifier
    assert all(check_name(n) for n in loaded.names)


# -- PHI planted in every field and input format ---------------------------------------------------------------------
MARKERS = {"email": "quillon.vandermeer@example.org", "mrn": "88412077", "name": "Quillon Vandermeer", "dob": "1957-03-09",
           "id": "MRN-88412077"}


def _assert_no_marker(text: str, where: str, allowed: tuple[str, ...] = ()) -> None:
    for k, v in MARKERS.items():
        if k not in allowed:
            assert v not in text, f"PHI marker '{k}' reached {where}"


def test_planted_phi_never_reaches_messages_logs_or_outputs(tmp_path, caplog):
    """Markers in the text (where the scrubber must find them: an e-mail and an MRN with its label) and in every
    other field (dropped); the id is hashed with --hash-ids. Outputs, stdout, stderr and logs carry none of them."""
    text = f"Follow-up. Contact {MARKERS['email']}. MRN: {MARKERS['mrn']}. No acute disease."
    others = {"patient_name": MARKERS["name"], "dob": MARKERS["dob"], "mrn": MARKERS["mrn"], "nested": {"who": MARKERS["name"]}}
    inputs = {
        "n.jsonl": json.dumps({"id": MARKERS["id"], "text": text, **others}) + "\n",
        "n.csv": "id,text,patient_name,dob,mrn\n" + f"{MARKERS['id']},\"{text}\",{MARKERS['name']},{MARKERS['dob']},{MARKERS['mrn']}\n",
    }
    caplog.set_level(logging.DEBUG)
    for fname, body in inputs.items():
        p = tmp_path / fname
        p.write_text(body)
        for fmt in ("masked", "surrogate", "spans"):
            out = tmp_path / f"o-{fname}-{fmt}.jsonl"
            r = run_cli("--verbose", "scrub", "--in", p, "--out", out, "--format", fmt, "--hash-ids")
            assert r.clean and r.code == 0, r.text
            _assert_no_marker(r.text, f"the output of scrub {fname} {fmt}")
            _assert_no_marker(out.read_text(), f"the scrubbed file ({fname}, {fmt})")
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "note1.txt").write_text(text)
    r = run_cli("scrub", "--in", folder, "--out", tmp_path / "o-txt.jsonl")
    assert r.clean and r.code == 0
    _assert_no_marker((tmp_path / "o-txt.jsonl").read_text() + r.text, "the scrubbed .txt folder")
    # bad input that names the file: the messages never quote the content
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": MARKERS["id"], "text": text}) + "\n" + json.dumps({"id": MARKERS["id"], "note": text}) + "\n{" + text)
    r = run_cli("scrub", "--in", bad, "--out", tmp_path / "o-bad.jsonl")
    assert r.code == 2 and r.clean
    _assert_no_marker(r.text, "an error message")
    _assert_no_marker(caplog.text, "the logs")


def test_planted_phi_in_a_recipe_run_stays_in_the_private_files(tmp_path, medsynth_home):
    """load (every field) → scrub: PHI may exist only in the load step's output (the private input, inside the run dir)
    and in the scrub step's private PHI list; not in the scrubbed dataset, the report, the manifest or the console."""
    text = f"Follow-up. Contact {MARKERS['email']}. MRN: {MARKERS['mrn']}. No acute disease."
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"id": MARKERS["id"], "text": text, "patient_name": MARKERS["name"], "dob": MARKERS["dob"], "split": "train"}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "phi", "steps": [{"type": "load", "name": "notes", "path": str(notes)},
                                                               {"type": "scrub", "name": "seeds", "mode": "mask", "keep_fields": ["split"], "hash_ids": True}]}))
    r = run_cli("--verbose", "run", recipe, "--run-dir", tmp_path / "run")
    assert r.clean and r.code == 0, r.text
    _assert_no_marker(r.text, "the console")
    private = {"steps/00_notes/notes.jsonl", "steps/01_seeds/phi_strings.jsonl", "ledger.sqlite"}
    for p in sorted((tmp_path / "run").rglob("*")):
        rel = p.relative_to(tmp_path / "run").as_posix()
        if p.is_file() and rel not in private:
            _assert_no_marker(p.read_text(errors="replace"), rel)
    seeds = [json.loads(x) for x in (tmp_path / "run" / "steps" / "01_seeds" / "seeds.jsonl").read_text().splitlines()]
    assert seeds[0]["meta"] == {"split": "train"}
    phi = (tmp_path / "run" / "steps" / "01_seeds" / "phi_strings.jsonl").read_text()
    assert MARKERS["name"] in phi and MARKERS["dob"] in phi  # the replay audit will look for them


# -- the tampering matrix ------------------------------------------------------------------------------------------------
def _tamper_cases(run: Path, other_home: Path):
    from medsynth.audit.sign import sign_manifest
    from medsynth.recipe.engine import write_manifest

    data = run / "steps" / "00_test_make" / "test_make.jsonl"

    def edit_byte():
        b = bytearray(data.read_bytes())
        b[5] ^= 1
        data.write_bytes(bytes(b))

    def manifest_edit(fn):
        def go():
            m = json.loads((run / "manifest.json").read_text())
            fn(m)
            (run / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True))
        return go

    return {
        "data byte changed": edit_byte,
        "data file truncated": lambda: data.write_bytes(b""),
        "data file removed": data.unlink,
        "report changed": lambda: (run / "report.json").write_text((run / "report.json").read_text().replace("completed", "COMPLETED", 1)),
        "file added at top": lambda: (run / "notes.txt").write_text("x"),
        "file added in a step": lambda: (data.parent / "extra.jsonl").write_text("{}"),
        "-wal file added": lambda: (run / "ledger.sqlite-wal").write_bytes(b"\0" * 8),
        "-shm file added": lambda: (data.parent / "x-shm").write_bytes(b"\0"),
        "hidden file added": lambda: (run / ".x").write_text("x"),
        "lock file changed": lambda: (run / ".lock").write_text("x"),
        "manifest entry removed": manifest_edit(lambda m: m["files"].pop(next(iter(m["files"])))),
        "manifest hash changed": manifest_edit(lambda m: m["files"][next(iter(m["files"]))].update(sha256="0" * 64)),
        "manifest files emptied": manifest_edit(lambda m: m.update(files={})),
        "manifest files a list": manifest_edit(lambda m: m.update(files=[])),
        "manifest entry escapes": manifest_edit(lambda m: m["files"].update({"../outside.txt": {"sha256": "0" * 64, "size": 1}})),
        "manifest removed": (run / "manifest.json").unlink,
        "signature removed": (run / "manifest.sig").unlink,
        "signature byte changed": lambda: (run / "manifest.sig").write_bytes((run / "manifest.sig").read_bytes().replace(b'"signature": "', b'"signature": "A', 1)),
        "signature garbage": lambda: (run / "manifest.sig").write_bytes(os.urandom(64)),
        "changed and re-signed by another key": lambda: (edit_byte(), sign_manifest(write_manifest(run), other_home)),
        "re-signed by another key only": lambda: sign_manifest(write_manifest(run), other_home),
        "manifest rewritten, old signature": lambda: write_manifest(run),
    }


def test_tampering_matrix_every_case_fails_verify(tmp_path, medsynth_home):
    from medsynth.recipe.engine import run_recipe
    from medsynth.recipe.schema import load_recipe

    pristine = tmp_path / "pristine"
    run_recipe(load_recipe({"name": "t", "seed": 1, "steps": [{"type": "test_make", "n": 4}]}), run_dir=pristine, show_progress=False)
    assert run_cli("verify", pristine).code == 0
    names = list(_tamper_cases(pristine, tmp_path / "other").keys())
    results = {}
    for case in names:
        run = tmp_path / "t" / case.replace(" ", "_")
        shutil.copytree(pristine, run)
        _tamper_cases(run, tmp_path / "other")[case]()
        r = run_cli("verify", run)
        results[case] = r.code
        assert r.clean, (case, r.text)
    assert results == {c: 1 for c in names}, results
    # and an untouched copy, and the re-signed one with its signer trusted explicitly, verify
    shutil.copytree(pristine, tmp_path / "copy")
    assert run_cli("verify", tmp_path / "copy").code == 0
    resigned = tmp_path / "t" / "re-signed_by_another_key_only"
    other_pub = tmp_path / "other" / "keys" / "medsynth_ed25519.pub.pem"
    assert run_cli("verify", resigned, "--trust", other_pub).code == 0
