"""Entity-first planning from seeds: which seed sentences are context, which may not be copied (no model needed)."""

from medsynth.data.records import Provenance, Record
from medsynth.text.prompts import Job, StrategyEnv, build_strategies, rng_for
from medsynth.text.prompts.entity_first import split_sentences
from medsynth.text.schemas import load_schema
from medsynth.text.tasks import get_task

LABELS = ["Cardiomegaly", "Opacity", "normal"]
SEEDS = [
    ("n1", "FINDINGS: The lungs are clear. The heart is normal in size. No pneumothorax. IMPRESSION: No acute disease.", ["normal"]),
    ("n2", "FINDINGS: The lungs are clear, the heart is normal in size. No effusion. No pneumothorax. IMPRESSION: Normal chest.", ["normal"]),
    ("n3", "FINDINGS: The heart size is normal. The lungs are clear. No pleural effusion. IMPRESSION: No acute disease.", ["normal"]),
    ("a1", "FINDINGS: Mild cardiomegaly. The lungs are clear. The patient had a fall in the garden of Lisbon on 3 June. IMPRESSION: Cardiomegaly.",
     ["Cardiomegaly"]),
    ("a2", "FINDINGS: Streaky opacity in the left lower lobe. The heart is normal in size. IMPRESSION: Opacity.", ["Opacity"]),
    ("a3", "FINDINGS: Mild cardiomegaly. Patchy opacity in the right base. The lungs are clear otherwise. IMPRESSION: Cardiomegaly, opacity.",
     ["Cardiomegaly", "Opacity"]),
]


def _setup(**opts):
    schema = load_schema("radiology")
    seeds = [Record(id=i, text=t, labels=ls, provenance=Provenance(step="seeds", params={"scrubbed": "surrogate"})) for i, t, ls in SEEDS]
    env = StrategyEnv(schema=schema, task=get_task("classification", schema, label_set=LABELS), seeds=seeds, label_set=LABELS, seed=3,
                      active=["prior", "entity_first"])
    strats = build_strategies(["prior", {"type": "entity_first", **opts}])
    for s in strats:
        s.setup(env)
    return env, strats


def test_anatomy_only_normal_statements_are_context_sentences():
    env, (prior, ef) = _setup()
    kind = {s["text"]: s["kind"] for s in ef.sentences}
    # anatomy mentions without a finding: the normal statements real reports are made of
    assert kind["The lungs are clear."] == "context" and kind["The heart is normal in size."] == "context"
    assert kind["Mild cardiomegaly."] == "entity" and kind["Streaky opacity in the left lower lobe."] == "entity"
    assert all(s["line"] == "none" for s in ef.sentences if s["kind"] == "context")
    # normal seeds have 3 context sentences each: normal documents are planned with as many
    assert sorted(ef.ctx_counts["normal"]) == [3, 3, 3]
    for i in range(30):
        job = Job(batch=0, index=i, rng=rng_for(3, 0, i))
        prior.plan(job, env)
        ef.plan(job, env)
        if job.plan.labels == ["normal"]:
            assert [u.kind for u in job.plan.units] == ["context"] * 3
        else:
            assert sum(u.kind == "entity" for u in job.plan.units) == len(job.plan.labels)


def test_context_prompts_show_the_templated_normal_statements():
    env, (_, ef) = _setup()
    unit = next(u for i in range(40) for u in _plan(env, ef, i).units if u.kind == "context")
    prompt, sids = ef.sentence_prompt(unit, env, rng_for(1, 2))
    shown = [ln[len("Sentence: "):] for ln in prompt.splitlines() if ln.startswith("Sentence: ")]
    assert any(s in ("The lungs are clear.", "The heart is normal in size.", "The heart size is normal.") for s in shown)
    assert prompt.endswith("Mentions: none\nSentence:") and sids


def _plan(env, ef, i):
    job = Job(batch=1, index=i, rng=rng_for(5, i))
    job.plan.labels = ["normal"]
    ef.plan(job, env)
    return job.plan


def test_only_private_looking_seed_sentences_are_protected_from_copying():
    env, (_, ef) = _setup()
    templated = "The lungs are clear, the heart is normal in size."  # one seed only, but every word is common
    private = "The patient had a fall in the garden of Lisbon on 3 June."  # one seed, rare words and a date
    assert templated.lower() not in ef.distinctive and private.lower() in ef.distinctive
    unit = next(u for i in range(40) for u in _plan(env, ef, i).units if u.kind == "context")
    assert ef.check_sentence(unit, " " + templated + "\n", "stop", env) == (templated, None)
    assert ef.check_sentence(unit, " " + private + "\n", "stop", env) == (None, "copies_seed_sentence")
    # a finding in a context sentence is still refused
    assert ef.check_sentence(unit, " There is mild cardiomegaly.\n", "stop", env) == (None, "context_has_finding")
    # with rare_word_share 1.0 every word used by fewer than all seeds is rare: the templated sentence is protected too
    _, (_, strict) = _setup(rare_word_share=1.0)
    assert templated.lower() in strict.distinctive


def test_split_sentences_keeps_abbreviations_of_numbers_together():
    assert split_sentences("FINDINGS: A 1.5 cm nodule. No effusion.") == ["FINDINGS: A 1.5 cm nodule.", "No effusion."]
