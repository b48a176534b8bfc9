"""The release bundle: only what may leave, signed, verifiable on its own; the officer's sign-off; refusals."""

import json
import shutil
import subprocess
import sys

import pytest

from medsynth.data.io import write_records
from medsynth.data.records import Record
from medsynth.recipe.engine import run_recipe
from medsynth.recipe.schema import load_recipe

PRIVATE = [
    ("p1", "Patient Rosalind Okonkwo-Baptiste, MRN 88341927, seen 03/14/2021. FINDINGS: Mild cardiomegaly. No pleural effusion. IMPRESSION: Cardiomegaly."),
    ("p2", "Evaluated by Dr. Thaddeus Vrolijk at Larkspur Valley Clinic. FINDINGS: The lungs are clear. IMPRESSION: No acute disease."),
    ("p3", "Call daughter Marisol at 617-555-0148. FINDINGS: Small left pleural effusion. IMPRESSION: Effusion."),
]
LABELS = {"p1": ["Cardiomegaly"], "p2": ["normal"], "p3": ["Pleural Effusion"]}
PHI = ["Rosalind", "Okonkwo-Baptiste", "88341927", "03/14/2021", "Thaddeus", "Vrolijk", "Larkspur Valley Clinic", "Marisol", "617-555-0148"]


def _cli(*args, home):
    return subprocess.run([sys.executable, "-m", "medsynth.cli", *map(str, args)], capture_output=True, text=True, env={**__import__("os").environ, "MEDSYNTH_HOME": str(home)})


@pytest.fixture(scope="module")
def run(tmp_path_factory, reporter_dir):
    import os

    from tests.helpers import isolated_home

    tmp = tmp_path_factory.mktemp("release")
    home = isolated_home(tmp / "home")
    old = os.environ.get("MEDSYNTH_HOME")
    os.environ["MEDSYNTH_HOME"] = str(home)
    try:
        write_records([Record(id=i, text=t, labels=LABELS[i]) for i, t in PRIVATE], tmp / "private.jsonl")
        write_records([Record(id=f"h{i}", text=f"FINDINGS: Heart size normal, film {i}. IMPRESSION: Normal chest.", labels=["normal"]) for i in range(5)],
                      tmp / "holdout.jsonl")
        rec = {"name": "rel", "seed": 5, "steps": [
            {"type": "load", "name": "private", "path": str(tmp / "private.jsonl")},
            {"type": "load", "name": "holdout", "path": str(tmp / "holdout.jsonl")},
            {"type": "generate", "name": "generate", "input": "private", "model": str(reporter_dir), "n": 6, "batch_size": 3,
             "max_new_tokens": 40, "strategies": ["prior", "label", "verify"]},
            {"type": "audit", "name": "audit", "input": "generate", "private": "private", "audits": ["phi_replay"], "on_fail": "quarantine"},
            {"type": "export", "name": "export", "input": "audit", "formats": ["jsonl", "conll", "brat", "spacy", "hf"]},
        ]}
        res = run_recipe(load_recipe(rec), run_dir=tmp / "run", show_progress=False)
        noexp = dict(rec, name="noexp", steps=rec["steps"][:4])
        res2 = run_recipe(load_recipe(noexp), run_dir=tmp / "run_noexp", show_progress=False)
    finally:
        if old is None:
            os.environ.pop("MEDSYNTH_HOME", None)
        else:
            os.environ["MEDSYNTH_HOME"] = old
    return {"run": res.run_dir, "noexp": res2.run_dir, "home": home, "tmp": tmp}


def test_release_refusals_then_a_forced_bundle_that_verifies_alone(run):
    home, tmp = run["home"], run["tmp"]
    # no signer identity: refused, naming the fix
    r = _cli("release", run["run"], "--out", tmp / "b0", home=home)
    assert r.returncode == 1 and "medsynth keys identity" in r.stderr and "Traceback" not in r.stderr
    r = _cli("keys", "identity", "--name", "Dana Reyes", "--role", "data engineer", home=home)
    assert r.returncode == 0 and "Dana Reyes (data engineer), key SHA256:" in r.stdout
    # a run without an export step has nothing to release
    r = _cli("release", run["noexp"], "--out", tmp / "b1", home=home)
    assert r.returncode == 1 and "no export step" in r.stderr
    # a handful of records with one audit cannot pass the gate (too few records, required audits not run, or a
    # replayed string): the release is refused, naming the verdict and its exceptions
    rep = json.loads((run["run"] / "report.json").read_text())
    gate = next(s["sections"]["audit_summary"] for s in rep["steps"] if s["name"] == "audit")
    assert gate["verdict"] != "pass" and gate["exceptions"]
    assert any(e.startswith("verbatim_copy: required by the policy but not run") for e in gate["exceptions"]) == (gate["verdict"] == "not_powered")
    r = _cli("release", run["run"], "--out", tmp / "b2", home=home)
    said = " ".join(r.stderr.split())  # the console wraps long lines (where depends on the run dir's path length)
    assert r.returncode == 1 and f"is {gate['verdict']!r}" in said and gate["exceptions"][0][:40] in said
    assert "--force" in r.stderr and not (tmp / "b2").exists()
    # forced, with the reason recorded in the signed manifest and the card
    b = tmp / "bundle"
    r = _cli("release", run["run"], "--out", b, "--force", "demo data, approved for internal testing", home=home)
    assert r.returncode == 0, r.stderr
    m = json.loads((b / "manifest.json").read_text())
    assert m["kind"] == "release" and m["forced"] == "demo data, approved for internal testing" and m["release_verdict"] == gate["verdict"]
    assert m["signer"]["name"] == "Dana Reyes" and m["signer"]["key_fingerprint"].startswith("SHA256:")
    assert set(m["files"]) >= {"data/records.jsonl", "data/records.conll", "data/records.conll.meta.jsonl", "report.json", "report.html", "dataset_card.md"}
    card = (b / "dataset_card.md").read_text()
    assert card.startswith("---\n") and "task_categories" in card and "demo data, approved for internal testing" in card and "## Known limitations" in card
    # the bundle alone verifies (copied elsewhere, the run directory gone from view)
    alone = tmp / "elsewhere" / "bundle"
    shutil.copytree(b, alone)
    r = _cli("verify", alone, home=home)
    assert r.returncode == 0 and "verified release" in r.stdout, r.stdout + r.stderr
    # no private text and no private PHI anywhere in the bundle (every file, as bytes)
    blob = b"".join(p.read_bytes() for p in alone.rglob("*") if p.is_file())
    for _, text in PRIVATE:  # whole records, and every sentence that carries an identifier (boilerplate like
        assert text.encode() not in blob  # "IMPRESSION: No acute disease." is legitimately shared)
        for sent in text.split(". "):
            if any(s in sent for s in PHI):
                assert sent.encode() not in blob, sent
    for s in PHI:
        assert s.encode() not in blob, s
    assert b"private.jsonl" not in blob and str(run["tmp"]).encode() not in blob  # no paths of the private data


def test_bundle_tampering_and_sign_off(run):
    home, tmp = run["home"], run["tmp"]
    _cli("keys", "identity", "--name", "Dana Reyes", "--role", "data engineer", home=home)
    b = tmp / "bundle2"
    assert _cli("release", run["run"], "--out", b, "--force", "test", home=home).returncode == 0
    # another machine does not trust the key; with --trust it does
    other = tmp / "otherhome"
    assert _cli("verify", b, home=other).returncode == 1
    pub = home / "keys" / "medsynth_ed25519.pub.pem"
    assert _cli("verify", b, "--trust", pub, home=other).returncode == 0
    # the officer signs off (on the officer's own machine, trusting the maker's key)
    officer = tmp / "officer"
    assert _cli("keys", "trust", pub, "--name", "dana", home=officer).returncode == 0
    assert _cli("keys", "identity", "--name", "Lee Park", "--role", "privacy officer", home=officer).returncode == 0
    r = _cli("sign-off", b, "--decision", "approved", "--note", "internal use only", home=officer)
    assert r.returncode == 0 and "approved by Lee Park" in r.stdout, r.stderr
    assert _cli("sign-off", b, "--decision", "rejected", home=officer).returncode == 1  # never overwritten
    off_pub = officer / "keys" / "medsynth_ed25519.pub.pem"
    r = _cli("verify", b, "--trust", off_pub, home=home)
    assert r.returncode == 0 and "sign-off: approved by Lee Park (privacy officer)" in r.stdout, r.stdout + r.stderr
    # an untrusted officer key fails verification
    assert _cli("verify", b, home=home).returncode == 1
    # any changed, added or removed file fails, and a sign-off does not survive a change of the bundle
    for kind in ("change", "add", "remove", "edit_sign_off"):
        c = tmp / f"t_{kind}"
        shutil.copytree(b, c)
        if kind == "change":
            p = c / "data" / "records.conll"
            p.write_bytes(p.read_bytes().replace(b"O\n", b"B-FINDING\n", 1))
        elif kind == "add":
            (c / "data" / "extra.txt").write_text("x")
        elif kind == "remove":
            (c / "dataset_card.md").unlink()
        else:
            p = c / "sign_off.json"
            p.write_text(p.read_text().replace("approved", "rejected"))
        r = _cli("verify", c, "--trust", off_pub, home=home)
        assert r.returncode == 1, kind
    # out inside the run dir, and an existing non-empty out, are refused
    assert "inside the run directory" in " ".join(_cli("release", run["run"], "--out", run["run"] / "x", "--force", "t", home=home).stderr.split())
    assert "not an empty folder" in " ".join(_cli("release", run["run"], "--out", b, "--force", "t", home=home).stderr.split())
