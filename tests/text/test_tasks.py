from medsynth.data.records import Record
from medsynth.text.prompts import Job, StrategyEnv, build_strategies, rng_for
from medsynth.text.schemas import load_schema
from medsynth.text.tasks import TASKS, get_task, mark_inline

SCH = load_schema("radiology")
LABELS = ["Cardiomegaly", "Pleural Effusion", "normal"]


def _job(**kw):
    j = Job(batch=0, index=0, rng=rng_for(0))
    j.notes["_header_keys"] = ["Findings list"]
    for k, v in kw.items():
        setattr(j, k, v)
    return j


def test_tasks_registered_and_emit_what_they_say():
    assert set(TASKS.names()) == {"classification", "ner", "relations"}
    t = "FINDINGS: Mild cardiomegaly in the left base. No effusion. IMPRESSION: Cardiomegaly."
    labels, spans, rels = get_task("classification", SCH, label_set=LABELS).annotate(t)
    assert labels == ["Cardiomegaly"] and {s.label for s in spans} <= {"FINDING", "DEVICE", "NEGATION_CUE"} and rels == []
    _, spans_n, rels_n = get_task("ner", SCH, label_set=LABELS).annotate(t)
    assert {"SEVERITY", "ANATOMY"} <= {s.label for s in spans_n} and rels_n == []
    _, spans_r, rels_r = get_task("relations", SCH, label_set=LABELS).annotate(t)
    assert {r.label for r in rels_r} >= {"has_severity", "negated_by"}
    assert all(r.head < len(spans_r) and r.tail < len(spans_r) for r in rels_r)


def test_parse_repairs_and_rejections():
    task = get_task("classification", SCH, label_set=LABELS)
    ok = task.parse(" Heart is normal. Lungs are clear. IMPRESSION: Normal chest.", "stop", _job())
    assert ok.text == "FINDINGS: Heart is normal. Lungs are clear. IMPRESSION: Normal chest." and not ok.repairs
    nxt = task.parse(" Heart is normal.\nIMPRESSION: Normal.\nFindings list: cardiomegaly\nFINDINGS: Big heart.", "stop", _job())
    assert nxt.text == "FINDINGS: Heart is normal.\nIMPRESSION: Normal." and "cut_next_block" in nxt.repairs
    two = task.parse(" Clear lungs. IMPRESSION: Normal. FINDINGS: Other report.", "stop", _job())
    assert two.text.endswith("IMPRESSION: Normal.") and "cut_second_document" in two.repairs
    loop = task.parse(" Lungs are clear. " + "No acute disease is seen. " * 4 + "IMPRESSION: ok.", "stop", _job())
    assert "cut_repetition" in loop.repairs and loop.needs_close and loop.text.count("No acute disease") == 1
    cut = task.parse(" Mild cardiomegaly. The lungs are", "length", _job())
    assert cut.needs_close and cut.text == "FINDINGS: Mild cardiomegaly." and "cut_unfinished_sentence" in cut.repairs
    assert task.parse(" Mild cardiomegaly. The lungs are", "length", _job(), allow_continue=False).reason == "incomplete"
    assert task.parse(" \u4e2d\u6587\u4e2d\u6587 <b>x</b> IMPRESSION: y", "stop", _job()).reason == "garbage"
    assert task.parse(" ok", "stop", _job()).reason == "too_short"


def test_render_is_a_document_to_continue_and_continuation_appends_close():
    seeds = [Record(id="s1", text="FINDINGS: Mild cardiomegaly. IMPRESSION: Cardiomegaly.", labels=["Cardiomegaly"]),
             Record(id="s2", text="FINDINGS: Lungs are clear. IMPRESSION: Normal.", labels=["normal"])]
    task = get_task("classification", SCH, label_set=LABELS)
    env = StrategyEnv(schema=SCH, task=task, seeds=seeds, label_set=LABELS, seed=0, active=["prior", "label", "fewshot"])
    strats = build_strategies(["prior", "label", {"type": "fewshot", "k": 2}])
    for s in strats:
        s.setup(env)
    job = Job(batch=0, index=0, rng=rng_for(1))
    for s in strats:
        s.plan(job, env)
    p = task.render(job, env, strats)
    assert p.startswith(SCH.document.header) and p.endswith("\nFINDINGS:")
    assert p.count("Findings list:") == 3 and "FINDINGS: Mild cardiomegaly." in p
    assert task.render(job, env, strats, n_examples=0).count("Findings list:") == 1
    cont = task.continuation_prompt(p, job, "FINDINGS: Mild cardiomegaly.")
    assert cont.endswith("FINDINGS: Mild cardiomegaly.\nIMPRESSION:")


def test_inline_markup_round_trip():
    from medsynth.text.spans import parse_inline

    t = "FINDINGS: Mild cardiomegaly. No effusion."
    _, spans, _ = get_task("ner", SCH, label_set=LABELS).annotate(t)
    marked = mark_inline(t, spans)
    assert "[cardiomegaly](FINDING)" in marked
    text, back = parse_inline(marked)
    assert text == t and [(s.start, s.end, s.label) for s in back] == [(s.start, s.end, s.label) for s in spans]
    task = get_task("ner", SCH, label_set=LABELS, output="inline")
    pr = task.parse(" [Mild](SEVERITY) [cardiomegaly](FINDING). IMPRESSION: [Cardiomegaly](FINDING).", "stop", _job())
    assert pr.text == "FINDINGS: Mild cardiomegaly. IMPRESSION: Cardiomegaly."
    assert [pr.text[s.start:s.end] for s in pr.model_spans] == ["Mild", "cardiomegaly", "Cardiomegaly"]
