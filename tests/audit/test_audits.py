import pytest

from medsynth.audit import run_audits
from medsynth.audit.copy import NearDuplicateAudit, VerbatimCopyAudit
from medsynth.audit.dcr import DCRAudit
from medsynth.audit.policy import load_policy
from medsynth.audit.replay import PhiReplayAudit, find_phi_replay
from medsynth.data.records import Record
from medsynth.exceptions import RecipeError
from medsynth.registry import AUDITS

PRIVATE = [
    "FINDINGS: There is a 2.3 cm spiculated mass in the right upper lobe abutting the minor fissure, new since the outside study from Riverside. IMPRESSION: Suspicious right upper lobe mass, recommend CT.",
    "FINDINGS: Status post median sternotomy with seven intact wires. Left ventricular assist device projects over the cardiac apex. IMPRESSION: LVAD in place, no acute process.",
    "FINDINGS: Large right pleural effusion with compressive atelectasis and mediastinal shift to the left. IMPRESSION: Large right effusion.",
] + [f"FINDINGS: The heart is normal in size. The lungs are clear. Bed {i}. IMPRESSION: No acute disease." for i in range(20)]
HOLDOUT = [f"FINDINGS: Normal heart size. Lungs are clear bilaterally, film {i}. IMPRESSION: No acute cardiopulmonary abnormality." for i in range(20)] + [
    "FINDINGS: The heart is normal in size. The lungs are clear. Portable film. IMPRESSION: No acute disease.",
    "FINDINGS: Mild cardiomegaly. Small left effusion. IMPRESSION: Cardiomegaly."]


def _recs(texts, prefix):
    return [Record(id=f"{prefix}{i}", text=t, labels=["normal"]) for i, t in enumerate(texts)]


def test_every_registered_audit_follows_the_contract():
    names = AUDITS.names()
    assert {"phi_replay", "verbatim_copy", "near_duplicate", "dcr"} <= set(names)
    pol = load_policy()
    for n in names:
        a = AUDITS.get(n)(pol.audit_policy(n))
        assert a.name == n


def test_verbatim_copy_flags_planted_copy_not_boilerplate():
    syn = _recs([PRIVATE[0], "FINDINGS: The heart is normal in size. The lungs are clear. IMPRESSION: No acute disease."], "s")
    res = VerbatimCopyAudit().run(syn, _recs(PRIVATE, "p"), _recs(HOLDOUT, "h"))
    assert res.flagged_ids == {"s0"}


def test_near_duplicate_flags_edited_copy():
    edited = PRIVATE[1].replace("seven", "six")
    res = NearDuplicateAudit().run(_recs([edited, HOLDOUT[-1]], "s"), _recs(PRIVATE, "p"), _recs(HOLDOUT[:5], "h"))
    assert res.flagged_ids == {"s0"}


def test_phi_replay():
    hits = find_phi_replay({"a": "Seen by dr. alvarez today", "b": "no names"}, ["Alvarez", "Al"], 4)
    assert set(hits) == {"a"}
    res = PhiReplayAudit().run(_recs(["Seen by Dr. Alvarez"], "s"), _recs(PRIVATE, "p"), None, phi_strings=["Alvarez"])
    assert res.verdict == "fail" and res.flagged_ids == {"s0"}


@pytest.mark.parametrize("n_syn", [30])
def test_dcr_flags_paraphrase_and_runs_test(n_syn):
    syn = _recs([PRIVATE[2].replace("Large", "Big", 1)] + HOLDOUT[:n_syn], "s")
    res = DCRAudit().run(syn, _recs(PRIVATE, "p"), _recs(HOLDOUT, "h"))
    assert "s0" in res.flagged_ids
    names = {f["name"] for f in res.figures}
    assert "dcr.mannwhitney_p_synthetic_closer" in names and all(f["how"] for f in res.figures)
    assert len(res.sections["dcr_hist"]["synthetic"]) == len(syn)


def test_policy_unknown_audit_and_bad_values(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\naudits:\n  dcrr: {}\n  verbatim_copy: {min_lcs_chars: -5, colour: red}\n")
    with pytest.raises(RecipeError) as ei:
        load_policy(p)
    locs = [loc for loc, _ in ei.value.problems]
    assert "audits.dcrr" in locs and any("min_lcs_chars" in loc for loc in locs) and any("colour" in loc for loc in locs)


def test_run_audits_default_policy():
    res = run_audits(_recs(HOLDOUT[:5], "s"), _recs(PRIVATE, "p"), _recs(HOLDOUT[5:], "h"), names=["verbatim_copy", "near_duplicate"])
    assert [r.audit for r in res] == ["verbatim_copy", "near_duplicate"]


def test_prefix_extraction_detects_a_memorising_generator():
    from medsynth.audit.extraction import ExtractionPolicy, PrefixExtractionAudit

    priv = _recs(PRIVATE, "p")
    by_prefix = {r.text: r.text for r in priv}

    def memoriser(prompts):
        return [next(t[len(p):] for t in by_prefix if t.startswith(p)) for p in prompts]

    def novel(prompts):
        return ["The lungs are clear. IMPRESSION: Normal chest." for _ in prompts]

    pol = ExtractionPolicy(n_records=10)
    bad = PrefixExtractionAudit(pol).run([], priv, None, generate=memoriser)
    good = PrefixExtractionAudit(pol).run([], priv, None, generate=novel)
    assert bad.verdict == "fail" and len(bad.findings) == 10
    assert good.verdict == "pass" and not good.findings
    skipped = PrefixExtractionAudit(pol).run([], priv, None)
    assert skipped.verdict == "pass" and any(f["name"].endswith("skipped") for f in skipped.figures)


def test_prefix_extraction_with_a_real_backend(tiny_backend_lm=None):
    from medsynth.audit.extraction import ExtractionPolicy, PrefixExtractionAudit
    from medsynth.text.backends.transformers import TransformersBackend
    from tests.text.conftest import build_tiny_lm

    model, tok = build_tiny_lm()
    be = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok)
    res = PrefixExtractionAudit(ExtractionPolicy(n_records=4, max_new_tokens=8)).run([], _recs(PRIVATE, "p"), None, backend=be)
    assert any(f["name"] == "prefix_extraction.probed" and f["value"] == 4 for f in res.figures)


def test_audit_cli_on_files(tmp_path):
    import subprocess
    import sys

    from medsynth.data.io import write_records

    write_records(_recs([PRIVATE[0]] + HOLDOUT[:3], "s"), tmp_path / "s.jsonl")
    write_records(_recs(PRIVATE, "p"), tmp_path / "p.jsonl")
    write_records(_recs(HOLDOUT, "h"), tmp_path / "h.jsonl")
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "audit", "--synthetic", str(tmp_path / "s.jsonl"), "--private", str(tmp_path / "p.jsonl"),
                        "--holdout", str(tmp_path / "h.jsonl"), "--audit", "verbatim_copy", "--out", str(tmp_path / "o.json")], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    import json

    o = json.loads((tmp_path / "o.json").read_text())
    assert o["verdict"] == "fail" and o["audits"][0]["findings"][0]["record_id"] == "s0"
    assert "spiculated" not in r.stdout  # no record text in output
