"""The same contract for every registered prompt strategy (like sklearn's parametrize_with_checks)."""

import pytest
from pydantic import ValidationError

from medsynth.data.records import Provenance, Record
from medsynth.registry import STRATEGIES
from medsynth.text.prompts import Job, Strategy, StrategyEnv, build_strategies, rng_for
from medsynth.text.schemas import annotate, load_schema
from medsynth.text.tasks import get_task

SEEDS = [
    ("s1", "FINDINGS: The heart is normal in size. The lungs are clear. No pneumothorax. IMPRESSION: No acute disease.", ["normal"]),
    ("s2", "FINDINGS: Mild cardiomegaly. No pleural effusion. IMPRESSION: Stable cardiomegaly.", ["Cardiomegaly"]),
    ("s3", "FINDINGS: Small left pleural effusion. Heart size is normal. IMPRESSION: Left effusion.", ["Pleural Effusion"]),
    ("s4", "FINDINGS: Streaky opacity in the left lower lobe. Mild cardiomegaly. IMPRESSION: Opacity, likely atelectasis.", ["Cardiomegaly", "Opacity"]),
    ("s5", "FINDINGS: The lungs are hyperexpanded. No focal consolidation. IMPRESSION: Emphysema.", ["Lung"]),
]
LABELS = ["Cardiomegaly", "Lung", "Opacity", "Pleural Effusion", "normal"]
ALL = STRATEGIES.names()
VARIANTS = {"attributes": [{}, {"source": "llm"}, {"attributes": {"comparison": ["stable", "new"]}}], "verbalizer": [{}, {"source": "llm"}],
            "entity_first": [{}, {"unit": "document"}], "feedback": [{}, {"estimator": "fidelity", "every": 1}], "verify": [{}, {"policy": "exact"}]}


def _seeds():
    return [Record(id=i, text=t, labels=ls, provenance=Provenance(step="seeds", params={"scrubbed": "surrogate"})) for i, t, ls in SEEDS]


def _env(tiny_lm, active, seed=5):
    from medsynth.text.backends.transformers import TransformersBackend

    model, tok = tiny_lm
    schema = load_schema("radiology")
    return StrategyEnv(schema=schema, task=get_task("classification", schema, label_set=LABELS), seeds=_seeds(), label_set=LABELS, seed=seed,
                       backend_factory=lambda: TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok), active=active)


def _generated(env, jobs):
    """Fake generated records for observe(): a seed text per job, labelled by the annotator."""
    out = []
    for j in jobs:
        text = env.seeds[(j.batch + j.index) % len(env.seeds)].text
        ann = annotate(text, env.schema, LABELS)
        out.append(Record(id=f"generate-{j.batch:05d}-{j.index:02d}", text=text, labels=ann.labels, spans=ann.spans,
                          scores={"label_fidelity": 1.0, "complete": True}, meta={"plan": j.plan.to_json()}))
    return out


def _run(strats, env, batches=3, bs=4):
    for s in strats:
        s.setup(env)
    trace = []
    for b in range(batches):
        jobs = [Job(batch=b, index=i, rng=rng_for(env.seed, b, i)) for i in range(bs)]
        for job in jobs:
            for s in strats:
                s.plan(job, env)
        rng = rng_for(env.seed, "describe", b)
        for job in jobs:
            lines = [ln for s in strats for ln in s.describe(job.plan, env, rng, True)]
            ex_lines = [ln for ex in job.examples for s in strats for ln in s.describe(env.plan_of(ex), env, rng, False)]
            for k, v in lines + ex_lines:
                assert isinstance(k, str) and isinstance(v, str) and "\n" not in k + v and ":" not in k
            assert set(job.plan.labels) <= set(LABELS)
            trace.append((job.plan.to_json(), [e.id for e in job.examples], lines, sorted(job.notes)))
        recs = _generated(env, jobs)
        for r, job in zip(recs, jobs, strict=True):
            why = [s.accept(r, job, env) for s in strats]
            assert all(w is None or isinstance(w, str) for w in why)
        env.observed.update(lab for r in recs for lab in r.labels)
        env.n_observed += len(recs)
        for s in strats:
            s.observe(recs, b, env)
    return trace


@pytest.mark.parametrize("name", ALL)
def test_strategy_is_documented_and_closed(name):
    cls = STRATEGIES.get(name)
    assert issubclass(cls, Strategy) and cls.name == name
    assert cls.survey_method and cls.description and (cls.__module__ and __import__(cls.__module__, fromlist=["x"]).__doc__)
    with pytest.raises(ValidationError):
        cls.Config.model_validate({"definitely_not_an_option": 1})
    for req in cls.requires:
        assert req in ALL


@pytest.mark.parametrize("name,opts", [(n, o) for n in ALL for o in VARIANTS.get(n, [{}])])
def test_strategy_contract_alone_and_deterministic(name, opts, tiny_lm):
    spec = {"type": name, **opts}
    strats = build_strategies([spec] + (["verify"] if name == "feedback" else []))
    a = _run(strats, _env(tiny_lm, [name]))
    b = _run(build_strategies([spec] + (["verify"] if name == "feedback" else [])), _env(tiny_lm, [name]))
    assert a == b  # same seed, same plans, examples and headers


def test_all_strategies_compose(tiny_lm):
    specs = ["prior", "label", "verbalizer", "entity_first", {"type": "attributes", "attributes": {"comparison": ["stable", "new"]}},
             "fewshot", {"type": "feedback", "every": 1, "estimator": "influence"}, "verify"]
    env = _env(tiny_lm, [s if isinstance(s, str) else s["type"] for s in specs])
    strats = build_strategies(specs)
    assert [s.stage for s in strats] == sorted(s.stage for s in strats)
    trace = _run(strats, env, batches=4)
    plans = [t[0] for t in trace]
    assert any(p["entities"] for p in plans) and all(p["attributes"] for p in plans)
    assert env.pool, "the feedback pool is filled after the first rounds"
    assert any(any(e.startswith("generate-") for e in t[1]) for t in trace[4:]), "feedback examples appear in later prompts"
    assert all(len(t[1]) == 3 for t in trace)  # feedback replaces seeds, the prompt keeps k examples


def test_prior_matches_seed_label_distribution(tiny_lm):
    env = _env(tiny_lm, ["prior"])
    (prior,) = build_strategies([{"type": "prior", "steer": False}])
    prior.setup(env)
    n_normal = 0
    for i in range(400):
        job = Job(batch=i // 8, index=i % 8, rng=rng_for(1, i))
        prior.plan(job, env)
        n_normal += job.plan.labels == ["normal"]
    assert abs(n_normal / 400 - 0.2) < 0.07  # 1 of 5 seeds is normal


def test_prior_power_flattens_abnormal_labels_and_keeps_the_normal_share(tiny_lm):
    from collections import Counter

    env = _env(tiny_lm, ["prior"])
    shares = {}
    for power in (1.0, 0.5):
        (prior,) = build_strategies([{"type": "prior", "steer": False, "joint": 0.0, "power": power}])
        prior.setup(env)
        cnt, n_normal = Counter(), 0
        for i in range(3000):
            job = Job(batch=i // 8, index=i % 8, rng=rng_for(2, i))
            prior.plan(job, env)
            n_normal += job.plan.labels == ["normal"]
            cnt.update(lab for lab in job.plan.labels if lab != "normal")
        tot = sum(cnt.values())
        shares[power] = ({lab: cnt[lab] / tot for lab in cnt}, n_normal / 3000)
    # seeds: Cardiomegaly 2, Opacity / Pleural Effusion / Lung 1 each -> weights 2:1:1:1 vs sqrt(2):1:1:1
    assert shares[1.0][0]["Cardiomegaly"] - shares[0.5][0]["Cardiomegaly"] > 0.04
    assert shares[0.5][0]["Pleural Effusion"] > shares[1.0][0]["Pleural Effusion"]
    assert abs(shares[1.0][1] - shares[0.5][1]) < 0.04
    with pytest.raises(ValidationError):
        build_strategies([{"type": "prior", "power": 0.0}])


def test_influence_estimator_prefers_examples_that_fit_the_real_data():
    from medsynth.text.prompts.feedback import influence_scores

    seeds = _seeds()
    train = [Record(id=f"g{i}", text=t, labels=ls) for i, (_, t, ls) in enumerate(SEEDS * 3)]
    good = Record(id="good", text="FINDINGS: Mild cardiomegaly. IMPRESSION: Cardiomegaly.", labels=["Cardiomegaly"])
    wrong = Record(id="wrong", text="FINDINGS: Mild cardiomegaly. IMPRESSION: Cardiomegaly.", labels=["Lung"])
    s_good, s_wrong = influence_scores(train + [good, wrong], [good, wrong], seeds, LABELS)
    assert s_good > s_wrong


def test_fewshot_requires_scrubbed_seeds_when_asked(tiny_lm):
    from medsynth.exceptions import RecipeError

    env = _env(tiny_lm, ["fewshot"])
    env.seeds[0].provenance.params.pop("scrubbed")
    (fs,) = build_strategies([{"type": "fewshot", "scrubbed": "require"}])
    with pytest.raises(RecipeError, match="did not pass a scrub step"):
        fs.setup(env)


def test_entity_first_plans_relations_for_a_schema_without_document_labels():
    from medsynth.text.prompts.entity_first import mentions_line

    sch = load_schema("i2b2_2010")
    seeds = [Record(id="n1", text="HOSPITAL COURSE: He was started on metoprolol for atrial fibrillation. A CT scan showed pneumonia."),
             Record(id="n2", text="HOSPITAL COURSE: Lisinopril was held because of acute kidney injury. She denies chest pain.")]
    env = StrategyEnv(schema=sch, task=get_task("relations", sch), seeds=seeds, label_set=[], seed=3, active=["entity_first"])
    (ef,) = build_strategies(["entity_first"])
    ef.setup(env)
    assert ef.seed_pairs["TrAP"] == [("TREATMENT", "metoprolol", "PROBLEM", "atrial fibrillation")]
    assert "CT scan" in ef.by_type["TEST"] and "CT" in ef.by_type["TEST"]  # acronyms keep their case
    rels = []
    for i in range(20):
        job = Job(batch=0, index=i, rng=rng_for(9, i))
        ef.plan(job, env)
        assert job.plan.units and all(u.kind in ("entity", "context") for u in job.plan.units)
        rels += [r.label for u in job.plan.units for r in u.relations]
        for u in job.plan.units:
            if u.relations:
                line = mentions_line(u.entities, u.relations, sch)
                r = sch.relation(u.relations[0].label)
                assert line == r.template.format(head=u.entities[0].text, tail=u.entities[1].text, name=r.name)
                prompt, sids = ef.sentence_prompt(u, env, rng_for(1, i))
                assert prompt.endswith(f"Mentions: {line}\nSentence:") and set(sids) <= {"n1", "n2"}
    assert len(set(rels)) >= 3
    unit = next(u for u in [ef._relation_unit(env, rng_for(4, k)) for k in range(50)] if u and u.relations[0].label == "TrAP")
    ok, why = ef.check_sentence(unit, f" {unit.entities[0].text.capitalize()} was given for {unit.entities[1].text}.\n", "stop", env)
    assert ok and why is None
    assert ef.check_sentence(unit, " The patient is doing well.", "stop", env) == (None, "sentence_missing_entity")


def test_batch_prompts_begin_with_the_same_examples(tiny_lm):
    """fewshot.shared and entity_first.shared_examples: every prompt of a batch (round) begins with the same block,
    which the backend encodes once; what follows is chosen per prompt (label-sharing example, relevant sentence)."""
    from medsynth.text.backends.transformers import _common_prefix

    active = ["prior", "entity_first", "fewshot"]
    env = _env(tiny_lm, active)
    strategies = build_strategies(active)
    for s in strategies:
        s.setup(env)
    jobs = [Job(batch=3, index=i, rng=rng_for(5, 3, i)) for i in range(6)]
    for j in jobs:
        for s in strategies:
            s.plan(j, env)
    heads = {tuple(r.id for r in j.examples[:2]) for j in jobs}
    assert len(heads) == 1  # the two shared documents, the same for every job of the batch
    assert all(j.notes["_shared_examples"] == 2 for j in jobs)
    assert all(len(j.examples) == 3 and j.examples[2] not in j.examples[:2] for j in jobs)
    for j in jobs:  # the last example shares a target label whenever a seed does
        target = set(j.plan.labels)
        if any(target & set(r.labels) for r in env.seeds if r not in j.examples[:2]):
            assert target & set(j.examples[2].labels)
    other = [Job(batch=4, index=i, rng=rng_for(5, 4, i)) for i in range(6)]
    for j in other:
        for s in strategies:
            s.plan(j, env)
    assert len({tuple(r.id for r in j.examples[:2]) for j in other}) == 1
    # entity-first sentence prompts of one round share the block; without it they share only the header
    ef = next(s for s in strategies if s.name == "entity_first")
    units = [(j, u) for j in jobs for u in j.plan.units]
    assert len(units) >= 2
    tok = tiny_lm[1]
    block = ef.shared_block(env, rng_for(5, "round"))
    assert len(block) >= 2
    shared = [tok(ef.sentence_prompt(u, env, rng_for(5, j.index, k), block)[0])["input_ids"] for k, (j, u) in enumerate(units)]
    alone = [tok(ef.sentence_prompt(u, env, rng_for(5, j.index, k))[0])["input_ids"] for k, (j, u) in enumerate(units)]
    block_text = "".join(f"Mentions: {s['line']}\nSentence: {s['text']}\n\n" for s in block)
    assert _common_prefix(shared) >= len(tok(block_text)["input_ids"]) - 2
    assert _common_prefix(shared) > _common_prefix(alone)
