"""Annotation schemas: entity types with lexicons, relation types with rules, document format.

A schema is data (a YAML file or a Python module exposing ``SCHEMA`` as a dict). It drives three things:

- the **annotator** (:func:`annotate`): lexicon matching per entity type with exact offsets, NegEx-style negation for
  negatable types (``negation_cue`` spans + ``negated_by`` relations), and rule-based relations (same sentence,
  nearest, optional cue pattern between head and tail). Generated texts are annotated by what they actually say,
  never by what they were asked to say;
- the **entity-first** strategy (entities and relations are sampled from the lexicon and the seeds' mentions);
- the **document format** of prompts (header, the section that opens a report, the section that must close it).

Document labels: mentions of a ``doc_label`` entity type (radiology: ``finding``) carry a canonical value (the
lexicon key, e.g. ``Cardiomegaly``); a document's labels are its positive canonical values in the label set, or
the schema's ``normal_label`` when it has none and reads as normal.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...data.records import Relation, Span

__all__ = ["EntityType", "RelationType", "DocumentFormat", "Schema", "Annotation", "Mention", "annotate", "sentences"]


class EntityType(BaseModel):
    """One entity label. ``lexicon`` maps a canonical value to regexes (case-insensitive) of its mentions;
    ``terms`` maps a canonical value to literal phrases (escaped, matched on word boundaries)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    description: str = ""
    prompt_name: str | None = Field(None, description="how prompts name this type (default: the name, lower-cased, spaces for '_')")
    lexicon: dict[str, list[str]] = Field(default_factory=dict)
    terms: dict[str, list[str]] = Field(default_factory=dict)
    doc_label: bool = Field(False, description="positive mentions' canonical values are document labels")
    negatable: bool = Field(False, description="mentions can be negated (NegEx-style cue before, or post-negation after)")
    sample: bool = Field(True, description="entity-first may plan mentions of this type")

    @property
    def words(self) -> str:
        return self.prompt_name or self.name.lower().replace("_", " ")


class RelationType(BaseModel):
    """A relation between two entity types, found by a rule: head and tail in the same sentence, at most
    ``max_chars`` apart, the nearest tail for each head, and (if given) one of ``cues`` in the text between them."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    head: list[str]
    tail: list[str]
    description: str = ""
    template: str = Field("{head} {name} {tail}", description="how prompts say it, e.g. '{head} in the {tail}'")
    cues: list[str] = Field(default_factory=list, description="regexes; one must occur between head and tail")
    tail_before_head: bool = Field(True, description="the tail may precede the head in the text")
    max_chars: int = Field(80, ge=1)
    rule: Literal["nearest", "negation"] = Field("nearest", description="'negation': the annotator's negation cue of a negated head")


class DocumentFormat(BaseModel):
    """What a generated document looks like, for prompts that are documents to continue."""

    model_config = ConfigDict(extra="forbid")
    header: str = Field("Clinical notes.", description="first line(s) of every prompt")
    open: str = Field("TEXT:", description="the section header that starts each document; prompts end with it")
    close: str | None = Field(None, description="a section that must appear for a document to be complete (e.g. 'IMPRESSION:')")
    min_close_chars: int = Field(3, ge=0, description="characters required after the closing section header")
    stop: list[str] = Field(default_factory=lambda: ["\n\n"], description="strings that end a completion")
    block_separator: str = "\n\n"


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    entities: list[EntityType]
    relations: list[RelationType] = Field(default_factory=list)
    negation_cues: list[str] = Field(default_factory=list, description="regexes of pre-negation cues (NegEx)")
    post_negation: list[str] = Field(default_factory=list, description="regexes matched right after a mention ('... is not seen')")
    negation_breaks: list[str] = Field(default_factory=lambda: ["but ", "however", "although"])
    negation_cue_label: str | None = Field(None, description="entity label for negation-cue spans (e.g. NEGATION_CUE)")
    normal_label: str | None = Field(None, description="document label of a text without positive doc-label mentions that reads as normal")
    normal_patterns: list[str] = Field(default_factory=list)
    label_words: dict[str, str] = Field(default_factory=dict, description="how prompts name each document label (verbalizer base forms)")
    document: DocumentFormat = Field(default_factory=DocumentFormat)
    one_relation_per_pair: bool = Field(True, description="a (head, tail) pair gets at most one relation: the first matching type in schema order")

    @model_validator(mode="after")
    def _check(self) -> Schema:
        names = [e.name for e in self.entities]
        dup = [n for n, k in Counter(names).items() if k > 1]
        if dup:
            raise ValueError(f"entity type(s) defined twice: {', '.join(dup)}")
        known = set(names) | ({self.negation_cue_label} if self.negation_cue_label else set())
        for r in self.relations:
            bad = [t for t in r.head + r.tail if t not in known]
            if bad:
                raise ValueError(f"relation '{r.name}' uses unknown entity type(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
            if r.rule == "negation" and not self.negation_cue_label:
                raise ValueError(f"relation '{r.name}' has rule 'negation' but the schema has no negation_cue_label")
        for e in self.entities:
            for vals in list(e.lexicon.values()):
                for p in vals:
                    try:
                        re.compile(p)
                    except re.error as err:
                        raise ValueError(f"entity '{e.name}': invalid regex {p!r} ({err})") from None
        return self

    # -- derived -------------------------------------------------------------------------------------------
    @property
    def entity_labels(self) -> list[str]:
        return [e.name for e in self.entities] + ([self.negation_cue_label] if self.negation_cue_label else [])

    def entity(self, name: str) -> EntityType:
        for e in self.entities:
            if e.name == name:
                return e
        raise KeyError(name)

    @property
    def doc_label_values(self) -> list[str]:
        return sorted({v for e in self.entities if e.doc_label for v in list(e.lexicon) + list(e.terms)})

    def relation(self, name: str) -> RelationType:
        for r in self.relations:
            if r.name == name:
                return r
        raise KeyError(name)

    @cached_property
    def _compiled(self) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
        out: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        for e in self.entities:
            pats: list[tuple[str, re.Pattern[str]]] = []
            for canon, regs in e.lexicon.items():  # whole words only: "pleura" is not a mention inside "pleural"
                pats += [(canon, re.compile(r"(?<!\w)(?:" + p + r")(?!\w)", re.I)) for p in regs]
            for canon, terms in e.terms.items():
                pats += [(canon, re.compile(r"(?<!\w)" + re.escape(t).replace(r"\ ", r"\s+") + r"(?!\w)", re.I)) for t in terms]
            # longer, more specific patterns first ("calcified granuloma" before "calcified")
            pats.sort(key=lambda cp: -len(cp[1].pattern))
            out[e.name] = pats
        return out

    @cached_property
    def _neg(self) -> list[re.Pattern[str]]:
        return [re.compile(p, re.I) for p in self.negation_cues]

    @cached_property
    def _post(self) -> list[re.Pattern[str]]:
        return [re.compile(p, re.I) for p in self.post_negation]

    @cached_property
    def _normal(self) -> list[re.Pattern[str]]:
        return [re.compile(p, re.I) for p in self.normal_patterns]

    @cached_property
    def _cues(self) -> dict[str, list[re.Pattern[str]]]:
        return {r.name: [re.compile(p, re.I) for p in r.cues] for r in self.relations}

    def words_for(self, label: str) -> str:
        return self.label_words.get(label, label.lower())


@dataclass(frozen=True)
class Mention:
    label: str  # entity type
    start: int
    end: int
    canonical: str
    negated: bool = False
    cue: tuple[int, int] | None = None


@dataclass
class Annotation:
    mentions: list[Mention] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


_SENT = re.compile(r"[^.;\n]+[.;\n]?")


def sentences(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENT.finditer(text)]


def _negation(schema: Schema, sent: str, s0: int, a: int, b: int) -> tuple[int, int] | None:
    before = sent[:a]
    cut = 0
    for brk in schema.negation_breaks:
        k = before.lower().rfind(brk)
        if k >= 0 and k + len(brk) > cut:
            cut = k + len(brk)
    before = before[cut:]
    cue = None
    for n in schema._neg:
        for cm in n.finditer(before):
            c = (s0 + cut + cm.start(), s0 + cut + cm.end())
            if cue is None or c[0] > cue[0]:  # the cue nearest the mention
                cue = c
    if cue is None:
        after = sent[b:]
        for n in schema._post:
            pm = n.search(after)
            if pm:
                core = re.search(r"(?:not|no longer)\s+\w+|resolved|absent", pm.group(0), re.I)
                cs = pm.start() + (core.start() if core else 0)
                ce = pm.start() + (core.end() if core else len(pm.group(0)))
                return (s0 + b + cs, s0 + b + ce)
    return cue


def find_mentions(text: str, schema: Schema, types: list[str] | None = None, values: list[str] | None = None) -> list[Mention]:
    """Every lexicon mention with offsets, negation marked for negatable types. Within a sentence, mentions never
    overlap: entity types listed first in the schema claim text first, and within a type longer patterns win."""
    out: list[Mention] = []
    comp = schema._compiled
    wanted = [e for e in schema.entities if types is None or e.name in types]
    for s0, s1 in sentences(text):
        sent = text[s0:s1]
        taken: list[tuple[int, int]] = []
        cands: list[tuple[int, int, EntityType, str, re.Pattern[str]]] = []
        for ei, e in enumerate(wanted):
            for canon, p in comp[e.name]:
                if values is not None and e.doc_label and canon not in values:
                    continue
                cands.append((ei, -len(p.pattern), e, canon, p))
        cands.sort(key=lambda c: (c[0], c[1]))
        for _, _, e, canon, p in cands:
            for m in p.finditer(sent):
                a, b = m.start(), m.end()
                if a == b or any(a < tb and ta < b for ta, tb in taken):
                    continue
                taken.append((a, b))
                cue = _negation(schema, sent, s0, a, b) if e.negatable else None
                out.append(Mention(e.name, s0 + a, s0 + b, canon, cue is not None, cue))
    out.sort(key=lambda m: (m.start, m.end))
    return out


def annotate(text: str, schema: Schema, label_set: list[str] | None = None) -> Annotation:
    """Spans (verified offsets), rule-based relations and document labels of ``text`` under ``schema``."""
    mentions = find_mentions(text, schema)
    spans: list[Span] = []
    index: dict[tuple[int, int, str], int] = {}

    def add(a: int, b: int, label: str) -> int:
        key = (a, b, label)
        if key not in index:
            index[key] = len(spans)
            spans.append(Span(start=a, end=b, label=label, text=text[a:b]))
        return index[key]

    ment_idx: list[int] = []
    for m in mentions:
        ment_idx.append(add(m.start, m.end, m.label))
    cue_of: dict[int, int] = {}
    if schema.negation_cue_label:
        for m, i in zip(mentions, ment_idx, strict=True):
            if m.negated and m.cue:
                cue_of[i] = add(m.cue[0], m.cue[1], schema.negation_cue_label)
    relations: list[Relation] = []
    sents = sentences(text)

    def sent_of(pos: int) -> int:
        for k, (a, b) in enumerate(sents):
            if a <= pos < b:
                return k
        return -1

    for rt in schema.relations:
        if rt.rule == "negation":
            for h, c in cue_of.items():
                if spans[h].label in rt.head:
                    relations.append(Relation(head=h, tail=c, label=rt.name))
            continue
        cues = schema._cues[rt.name]
        for m, h in zip(mentions, ment_idx, strict=True):
            if m.label not in rt.head or m.negated:
                continue
            best: tuple[int, int] | None = None
            for m2, t in zip(mentions, ment_idx, strict=True):
                if t == h or m2.label not in rt.tail or sent_of(m2.start) != sent_of(m.start):
                    continue
                if m2.start < m.start and not rt.tail_before_head:
                    continue
                gap_a, gap_b = (m.end, m2.start) if m2.start >= m.end else (m2.end, m.start)
                if gap_b < gap_a:  # overlapping mentions are never related
                    continue
                dist = gap_b - gap_a
                if dist > rt.max_chars:
                    continue
                if cues and not any(c.search(text[gap_a:gap_b]) for c in cues):
                    continue
                if best is None or dist < best[0]:
                    best = (dist, t)
            if best is not None:
                relations.append(Relation(head=h, tail=best[1], label=rt.name))
    # spans sorted by offset; relations re-indexed
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end, spans[i].label))
    new_of = {old: new for new, old in enumerate(order)}
    spans = [spans[i] for i in order]
    if schema.one_relation_per_pair:
        rank = {r.name: i for i, r in enumerate(schema.relations)}
        best: dict[tuple[int, int], Relation] = {}
        for r in relations:
            k = (r.head, r.tail)
            if k not in best or rank[r.label] < rank[best[k].label]:
                best[k] = r
        relations = list(best.values())
    relations = sorted({(new_of[r.head], new_of[r.tail], r.label) for r in relations})
    rels = [Relation(head=h, tail=t, label=lab) for h, t, lab in relations]
    return Annotation(mentions=mentions, spans=spans, relations=rels, labels=doc_labels(text, schema, label_set, mentions))


def doc_labels(text: str, schema: Schema, label_set: list[str] | None = None, mentions: list[Mention] | None = None) -> list[str]:
    """Positive doc-label mentions in the label set; else the normal label if the text reads as normal; else []."""
    mentions = find_mentions(text, schema) if mentions is None else mentions
    doc_types = {e.name for e in schema.entities if e.doc_label}
    pos = sorted({m.canonical for m in mentions if m.label in doc_types and not m.negated and (label_set is None or m.canonical in label_set)})
    if pos:
        return pos
    if schema.normal_label and (label_set is None or schema.normal_label in label_set or not label_set):
        if any(p.search(text) for p in schema._normal) or any(m.negated for m in mentions if m.label in doc_types):
            return [schema.normal_label]
    return []
