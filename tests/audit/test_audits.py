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
    from medsynth.audit.base import VERDICTS

    syn = _recs([PRIVATE[0], HOLDOUT[0], "FINDINGS: Small left effusion. IMPRESSION: Effusion."], "s")
    for n in names:
        a = AUDITS.get(n)(pol.audit_policy(n))
        assert a.name == n
        # every registered audit runs on tiny inputs and reports by the contract (an audit that needs a model or
        # images it was not given says "skipped" with the reason)
        res = a.run(syn, _recs(PRIVATE, "p"), _recs(HOLDOUT, "h")).settle()
        assert res.audit == n and res.verdict in VERDICTS and res.reason, n
        assert all(f["name"].startswith(f"{n}.") and f["how"] for f in res.figures), n
        assert res.flagged_ids <= {r.id for r in syn}, n
        assert (res.verdict == "skipped") == (res.skipped is not None), n


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


def test_default_audits_leave_out_those_that_need_canaries_models_or_images():
    pol = load_policy()
    assert {"canary_exposure", "membership_inference", "image_copy"} <= set(pol.audits)  # thresholds documented
    default = pol.default_audits()
    assert {"phi_replay", "verbatim_copy", "near_duplicate", "dcr", "rare_content"} <= set(default)
    assert not {"canary_exposure", "membership_inference", "image_copy"} & set(default)
    # a text release audited with the shipped policy and no audit list runs without image records
    res = run_audits(_recs(HOLDOUT[:5], "s"), _recs(PRIVATE, "p"), _recs(HOLDOUT[5:], "h"))
    assert [r.audit for r in res] == default


def test_prefix_extraction_detects_a_memorising_generator():
    from medsynth.audit.extraction import ExtractionPolicy, PrefixExtractionAudit

    priv = _recs(PRIVATE, "p")
    by_prefix = {r.text: r.text for r in priv}

    def memoriser(prompts):
        return [next(t[len(p):] for t in by_prefix if t.startswith(p)) for p in prompts]

    def novel(prompts):
        return ["The lungs are clear. IMPRESSION: Normal chest." for _ in prompts]

    pol = ExtractionPolicy(n=10)
    bad = PrefixExtractionAudit(pol).run([], priv, None, generate=memoriser)
    good = PrefixExtractionAudit(pol).run([], priv, None, generate=novel)
    assert bad.verdict == "fail" and len(bad.findings) == 10
    assert good.verdict == "pass" and not good.findings
    skipped = PrefixExtractionAudit(pol).run([], priv, None)
    assert skipped.verdict == "skipped" and "no generator" in skipped.reason  # "skipped" is not "pass"
    assert any(f["name"].endswith("skipped") for f in skipped.figures)


def test_prefix_extraction_with_a_real_backend(tiny_backend_lm=None):
    from medsynth.audit.extraction import ExtractionPolicy, PrefixExtractionAudit
    from medsynth.text.backends.transformers import TransformersBackend
    from tests.helpers import build_tiny_lm

    model, tok = build_tiny_lm()
    be = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok)
    res = PrefixExtractionAudit(ExtractionPolicy(n=4, max_new_tokens=8)).run([], _recs(PRIVATE, "p"), None, backend=be)
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


# -- rare content, policy documentation, labels -----------------------------------------------------------------

_FINDINGS = ["spiculated mass", "sternotomy wires", "pacemaker leads", "hiatal hernia", "calcified granuloma", "rib fracture", "port catheter",
             "apical scarring", "pleural plaques", "azygos lobe", "bullous emphysema", "chain sutures", "humeral head fracture", "kyphoplasty cement"]


def _corpus(n, seed, prefix):
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        fs = rng.sample(_FINDINGS, 2)
        size = f"{rng.randint(5, 40) / 10:.1f} cm"
        out.append(Record(id=f"{prefix}{i}", labels=["x"], text=(
            f"FINDINGS: The heart is normal in size. The lungs are clear. There is a {size} {fs[0]} in the {rng.choice(['right', 'left'])} "
            f"{rng.choice(['upper', 'lower'])} zone with {fs[1]}. No pneumothorax. IMPRESSION: {fs[0].capitalize()}.")))
    return out


def test_rare_content_flags_a_paraphrase_not_new_patients():
    from medsynth.audit.content import RareContentAudit, content_units

    assert "2.3 cm" in content_units("a 2.3 cm mass") and "the" not in content_units("the mass")
    private = _corpus(120, 1, "p") + [Record(id="pX", labels=["x"], text=(
        "FINDINGS: Left ventricular assist device projects over the cardiac apex. Seven intact sternotomy wires. A 1.7 cm calcified "
        "granuloma in the lingula and a healed left seventh rib fracture. IMPRESSION: LVAD in place; lingular granuloma."))]
    holdout = _corpus(80, 2, "h")
    para = Record(id="leak", labels=["x"], text=(
        "IMPRESSION: LVAD in place with a lingular granuloma. FINDINGS: Healed fracture of the left seventh rib; granuloma in the lingula, "
        "calcified, measuring 1.7 cm; seven sternotomy wires intact; ventricular assist device over the cardiac apex."))
    syn = _corpus(60, 3, "s") + [para]
    res = RareContentAudit().run(syn, private, holdout)
    assert "leak" in res.flagged_ids
    assert len(res.flagged_ids - {"leak"}) <= 1  # new patients' reports share only boilerplate and common findings
    f = next(x for x in res.findings if x.record_id == "leak")
    assert f.value["private_id"] == "pX" and "text" not in f.value
    assert res.sections["specific_overlap_hist"]["plot"]["kind"] == "histogram"
    assert all(x["how"] for x in res.figures)
    small = RareContentAudit().run(syn, private, holdout[:5])
    assert small.verdict == "fail" and "holdout" in small.release_reasons[0]


def test_every_policy_threshold_documents_what_it_protects_against():
    import re

    import yaml

    from medsynth.audit.policy import DEFAULT_POLICY_PATH

    mine = ["phi_replay", "verbatim_copy", "near_duplicate", "dcr", "rare_content"]
    for name in mine:
        for field, info in AUDITS.get(name).Policy.model_fields.items():
            if field != "enabled":
                assert info.description and len(info.description) > 15, f"{name}.{field} has no description"
    text = DEFAULT_POLICY_PATH.read_text()
    sections = re.split(r"\n  (?=[a-z_]+:\n)", text.split("audits:", 1)[1])
    documented = {sec.split(":", 1)[0].strip(): sec for sec in sections if sec.strip()}
    assert set(yaml.safe_load(text)["audits"]) == set(documented)
    for name, sec in documented.items():
        assert "Protects against" in sec, f"policy.yaml section {name} does not say what it protects against"
    load_policy()  # the shipped policy validates


def test_policy_unknown_phi_label_is_a_clear_error(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\naudits:\n  phi_replay: {labels: [NAME, SOCIAL]}\n  rare_content: {quantil: 0.9}\n")
    with pytest.raises(RecipeError) as ei:
        load_policy(p)
    msgs = dict(ei.value.problems)
    assert any("SOCIAL" in m and "known labels" in m for m in msgs.values())
    assert any("quantil" in loc for loc in msgs)


def test_phi_replay_labels_filter():
    phi = [{"label": "NAME", "text": "Alvarez"}, {"label": "DATE", "text": "03/14/2020"}]
    syn = _recs(["Seen on 03/14/2020", "Dr. Alvarez"], "s")
    from medsynth.audit.replay import PhiReplayPolicy

    allp = PhiReplayAudit().run(syn, _recs(PRIVATE, "p"), None, phi_strings=phi)
    names = PhiReplayAudit(PhiReplayPolicy(labels=["NAME"])).run(syn, _recs(PRIVATE, "p"), None, phi_strings=phi)
    assert allp.flagged_ids == {"s0", "s1"} and names.flagged_ids == {"s1"}


def test_verdict_classes_mean_what_they_say():
    """skipped is not pass; nothing to look for, a saturated threshold and too few records are not_powered."""
    from medsynth.audit.extraction import PrefixExtractionAudit
    from medsynth.audit.base import release_verdict

    priv, hold = _recs(PRIVATE, "p"), _recs(HOLDOUT, "h")
    syn = _recs(HOLDOUT[:3], "s")
    # nothing to look for: the private set's PHI list is empty
    empty = PhiReplayAudit().run(syn, priv, None, phi_strings=[])
    assert empty.verdict == "not_powered" and "0 PHI strings" in empty.reason
    powered = PhiReplayAudit().run(syn, priv, None, phi_strings=["Riverside"])
    assert powered.verdict == "pass"
    # a holdout made of copies of private records saturates the near-duplicate threshold at 1.0: the check is off
    copies = _recs(PRIVATE[3:23], "h")
    sat = NearDuplicateAudit().run(syn, priv, copies)
    figs = {f["name"]: f["value"] for f in sat.figures}
    assert figs["near_duplicate.jaccard_threshold"] == 1.0
    assert sat.verdict == "not_powered" and "saturated" in sat.reason
    # a failing audit stays fail even when it is also unpowered
    failing = PhiReplayAudit().run(_recs(["Seen at Riverside"], "s"), priv, None, phi_strings=["Riverside"])
    assert failing.verdict == "fail"
    # skipped: no generator to probe
    skipped = PrefixExtractionAudit().run([], priv, None)
    assert skipped.verdict == "skipped"
    # too few synthetic records for the policy's min_records
    few = run_audits(syn, priv, hold, names=["verbatim_copy"], policy=load_policy())
    assert few[0].verdict == "not_powered" and "min_records" in few[0].reason
    # the release verdict: pass only when every required audit ran, was powered and passed
    ok = {"a": {"verdict": "pass", "reason": ""}, "b": {"verdict": "pass", "reason": ""}}
    assert release_verdict(ok, ["a", "b"]) == ("pass", [])
    v, exc = release_verdict({**ok, "c": {"verdict": "skipped", "reason": "no model"}}, ["a", "b"])
    assert v == "pass" and exc == []  # a skipped audit the policy does not require does not block
    v, exc = release_verdict({"a": ok["a"]}, ["a", "b"])
    assert v == "not_powered" and exc[0].startswith("b: required by the policy but not run")
    v, exc = release_verdict({"a": {"verdict": "not_powered", "reason": "0 PHI strings"}, "b": {"verdict": "fail", "reason": "copies"}}, ["a", "b"])
    assert v == "fail" and exc == ["b: fail (copies)"]


@pytest.mark.parametrize("gate", ["audit", "image_audit"])
def test_the_gate_cache_key_holds_the_policy_content(tmp_path, gate):
    """A cached gate must not be reused after its policy changed (a new limit, weight or audit list)."""
    from pathlib import Path

    from medsynth.recipe.schema import load_recipe

    pol = tmp_path / "policy.yaml"
    pol.write_text((Path(__file__).resolve().parents[2] / "privacy" / "policy.yaml").read_text())
    rec = {"name": "x", "seed": 1, "privacy": {"policy": str(pol)}, "steps": [
        {"type": "load", "name": "private", "path": str(tmp_path / "p.jsonl")},
        {"type": gate, "name": "gate", "input": "private", "private": "private", "holdout": None}]}
    step = load_recipe(rec, check_resources=False).steps[1]
    before = step.cache_key_extra()
    assert before["policy"]["clean_flag_budget"] == 0.01
    pol.write_text(pol.read_text().replace("clean_flag_budget: 0.01", "clean_flag_budget: 0.02"))
    assert step.cache_key_extra()["policy"]["clean_flag_budget"] == 0.02 and step.cache_key_extra() != before
