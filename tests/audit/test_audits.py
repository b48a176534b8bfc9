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
