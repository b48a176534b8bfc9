"""The prompt-strategy contract.

A generation job is planned, rendered into prompts, generated, parsed and checked. Strategies are small, composable
objects that take part in that cycle through five hooks, all optional:

``setup(env)``
    once per step run: read the seeds, build banks (verbalizer synonyms, attribute values, mention banks), possibly
    with the LLM itself (``env.backend()``).
``plan(job, env)``
    per job, in stage order: choose target labels (``prior``, ``label``), entities and relations (``entity_first``),
    attribute values (``attributes``), in-context examples (``fewshot``, ``feedback``).
``describe(plan, env, rng, target)``
    the header lines ("key: value") that describe a document's plan. The SAME function describes each in-context
    example (from its annotations) and the open target document (from its plan), so the base model sees the
    mapping from header to text in context and continues it for the target.
``accept(record, job, env)``
    per generated record: return a rejection reason, or None (and possibly relabel the record, as ``verify`` does).
``observe(records, batch, env)``
    after each committed batch: update state that later batches use (ProGen feedback pool, prior deficit). State
    must be a deterministic function of the committed records, so that a resumed run plans the same prompts.

Every strategy is registered by name in ``medsynth.registry.STRATEGIES`` and has a closed pydantic ``Config`` for its
options (written in a recipe as ``{type: <name>, ...}`` inside ``strategies:``). ``tests/text/test_strategy_contract.py``
runs the same contract over every registered strategy.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ...data.records import Record

__all__ = ["Strategy", "StrategyOptions", "StrategyEnv", "Plan", "PlannedEntity", "PlannedRelation", "Unit", "Job", "rng_for",
           "Stage"]


def rng_for(*parts: Any) -> random.Random:
    """A ``random.Random`` seeded by a hash of ``parts`` (stable across processes, unlike ``hash()``)."""
    return random.Random(int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big"))


class Stage:
    """Plan order of strategies (lower runs first)."""

    TARGET = 10  # prior, label: which labels
    VOCAB = 20  # verbalizer: how labels are worded
    CONTENT = 30  # entity_first: which mentions and relations
    ATTRIBUTES = 40  # attributes: which attribute values
    EXAMPLES = 50  # fewshot: which in-context seeds
    FEEDBACK = 60  # feedback: which generated examples
    CHECK = 90  # verify


class StrategyOptions(BaseModel):
    """Base of every strategy's options (closed)."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class PlannedEntity:
    label: str  # entity type, e.g. FINDING
    text: str  # surface form the document must contain
    canonical: str | None = None  # canonical value (document label for doc-label types)
    negated: bool = False


@dataclass
class PlannedRelation:
    label: str
    head: int  # index into Plan.entities (or Unit.entities)
    tail: int


@dataclass
class Unit:
    """One sentence to generate in entity-first sentence mode: the entities (and relations) it must contain, or none
    for a context sentence (a statement without positive findings)."""

    entities: list[PlannedEntity] = field(default_factory=list)
    relations: list[PlannedRelation] = field(default_factory=list)
    kind: str = "entity"  # "entity" | "context"
    order: float = 0.5  # relative position in the document (learnt from the seeds)


@dataclass
class Plan:
    """What a document should contain (a target) or does contain (an in-context example)."""

    labels: list[str] = field(default_factory=list)
    entities: list[PlannedEntity] = field(default_factory=list)
    relations: list[PlannedRelation] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    units: list[Unit] = field(default_factory=list)
    text: str | None = None  # the document's text, for plans of existing records (examples)

    def to_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "attributes": dict(self.attributes),
                "entities": [{"label": e.label, "text": e.text, "canonical": e.canonical, "negated": e.negated} for e in self.entities],
                "relations": [{"label": r.label, "head": r.head, "tail": r.tail} for r in self.relations]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        return cls(labels=list(d.get("labels", [])), attributes=dict(d.get("attributes", {})),
                   entities=[PlannedEntity(**e) for e in d.get("entities", [])],
                   relations=[PlannedRelation(**r) for r in d.get("relations", [])])


@dataclass
class Job:
    batch: int
    index: int
    rng: random.Random
    plan: Plan = field(default_factory=Plan)
    examples: list[Record] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # provenance params, per strategy
    prefix: str = ""  # document body assembled before the document prompt (entity-first sentence mode)
    sentence_texts: list[str] = field(default_factory=list)


class StrategyEnv:
    """Shared state of one generate-step run, given to every strategy hook."""

    def __init__(self, *, schema: Any, task: Any, seeds: list[Record], label_set: list[str], seed: int,
                 backend_factory: Callable[[], Any] | None = None, gen_defaults: dict[str, Any] | None = None,
                 active: list[str] | None = None, step_name: str = "generate"):
        from ..schemas import annotate

        self.schema = schema
        self.task = task
        self.seeds = seeds
        self.label_set = label_set
        self.seed = seed
        self.step_name = step_name
        self.active = list(active or [])
        self._backend_factory = backend_factory
        self._backend: Any = None
        self.gen_defaults = dict(gen_defaults or {})
        self.annotations = {r.id: annotate(r.text or "", schema, label_set) for r in seeds}
        self.seed_by_id = {r.id: r for r in seeds}
        self.normal_label = schema.normal_label
        # filled by strategies
        self.verbalize: Callable[[str, random.Random, str | None], str] = lambda lab, rng, text=None: schema.words_for(lab)
        self.example_attributes: dict[str, dict[str, str]] = {}
        self.content_plan: str | None = None  # name of the strategy that writes the content header (entity_first)
        self.sentence_mode = False
        self.pool: list[Record] = []  # feedback examples
        self.observed: Counter[str] = Counter()
        self.n_observed = 0
        self.figures: list[tuple[str, Any, str]] = []
        self.sections: dict[str, Any] = {}
        self.llm_calls = 0

    # -- LLM access for strategies that ask the model itself (attributes, verbalizer) ----------------------------
    def backend(self) -> Any:
        if self._backend is None:
            if self._backend_factory is None:
                raise RuntimeError("this strategy needs the generator (source: llm) but no backend is available")
            self._backend = self._backend_factory()
        return self._backend

    def ask(self, prompts: list[str], max_new_tokens: int = 48, stop: list[str] | None = None, temperature: float = 0.7) -> list[str]:
        """Completions of ``prompts`` with the step's generator (deterministic from the step seed)."""
        from ..backends.base import GenParams

        self.llm_calls += len(prompts)
        p = GenParams(max_new_tokens=max_new_tokens, temperature=temperature, top_k=self.gen_defaults.get("top_k", 40),
                      top_p=self.gen_defaults.get("top_p", 0.95), stop=stop or ["\n\n"], seed=self.seed,
                      batch_size=self.gen_defaults.get("batch_size", 8))
        return [c.text if c.finish_reason != "error" else "" for c in self.backend().generate(prompts, p)]

    def figure(self, name: str, value: Any, how: str) -> None:
        self.figures.append((name, value, how))

    # -- plans of existing records (in-context examples) -----------------------------------------------------------
    def plan_of(self, record: Record) -> Plan:
        """The plan a record fulfils: its labels, its positive mentions (entities), relations, attribute values."""
        from ..schemas import annotate

        if record.id not in self.annotations:  # generated examples (feedback): annotated once, by the same annotator
            self.annotations[record.id] = annotate(record.text or "", self.schema, self.label_set)
        ann = self.annotations[record.id]
        spans, rels = ann.spans, ann.relations
        mentions = {(m.start, m.end, m.label): m for m in ann.mentions}
        ents: list[PlannedEntity] = []
        idx: dict[int, int] = {}
        neg_heads = {r.head for r in rels if r.label == "negated_by"}
        for i, s in enumerate(spans):
            if self.schema.negation_cue_label and s.label == self.schema.negation_cue_label:
                continue
            m = mentions.get((s.start, s.end, s.label))
            negated = m.negated if m is not None else i in neg_heads
            idx[i] = len(ents)
            ents.append(PlannedEntity(s.label, s.text, m.canonical if m is not None else None, negated))
        relations = [PlannedRelation(r.label, idx[r.head], idx[r.tail]) for r in rels if r.head in idx and r.tail in idx]
        attrs = self.example_attributes.get(record.id) or dict(record.meta.get("plan", {}).get("attributes", {}))
        return Plan(labels=list(record.labels), entities=ents, relations=relations, attributes=attrs, text=record.text)


class Strategy:
    """Base class of prompt strategies. Subclasses set the class attributes and override any hooks."""

    name: ClassVar[str]
    survey_method: ClassVar[str]
    description: ClassVar[str]
    stage: ClassVar[int] = Stage.EXAMPLES
    requires: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, options: StrategyOptions | dict[str, Any] | None = None):
        if options is None:
            options = self.Config()
        elif isinstance(options, dict):
            options = self.Config.model_validate(options)
        self.options = options

    def check(self, config: Any) -> list[tuple[str, str]]:
        """Cheap checks of the step config this strategy runs in: [(field, problem + fix)]."""
        return []

    def setup(self, env: StrategyEnv) -> None:
        pass

    def plan(self, job: Job, env: StrategyEnv) -> None:
        pass

    def describe(self, plan: Plan, env: StrategyEnv, rng: random.Random, target: bool) -> list[tuple[str, str]]:
        return []

    def accept(self, record: Record, job: Job, env: StrategyEnv) -> str | None:
        return None

    def observe(self, records: list[Record], batch: int, env: StrategyEnv) -> None:
        pass
