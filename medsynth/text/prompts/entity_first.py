"""``entity_first``: sample entities and relations first, then ask for a text that contains them (Tang et al. 2023).

For each target document the strategy plans the mentions it must contain: one entity per target label (its
surface form drawn from the seeds' own mentions of that label, or from the verbalizer bank), plus related
entities sampled from what co-occurs with that label in the seeds (``located_at`` anatomy, ``has_severity``
modifier; TrAP/TeRP… partners for the clinical schema). Without document labels (e.g. the i2b2-style schema)
it samples relation types and their arguments directly.

``unit: sentence`` (default; best for small base models). Each planned entity group becomes one sentence
request, "Mentions: mild cardiomegaly\nSentence:", shown after seed sentences in the same format (their mention
lists come from the annotator), plus context sentences ("Mentions: none": statements without findings, as many
as the seeds have). Each sentence is checked — its entities present (or an annotator mention of the same label),
no finding in a context sentence, no verbatim copy of a distinctive seed sentence — and retried once if not. The
sentences are ordered as in the seeds and the model then writes the closing section (the IMPRESSION) as a
continuation of the whole document prompt.

``unit: document``: the document header lists the planned mentions ("Findings: mild cardiomegaly; atelectasis in
the left base") and the model writes the whole document.

In both modes the final text is re-annotated; planned-entity recall is reported, and ``verify`` decides labels.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from typing import Any, Literal

from pydantic import Field

from ...registry import STRATEGIES
from .base import Job, Plan, PlannedEntity, PlannedRelation, Stage, Strategy, StrategyEnv, StrategyOptions, Unit

__all__ = ["EntityFirstStrategy", "split_sentences", "mentions_line"]

_SPLIT = re.compile(r"(?<=[.!?])\s+(?=\S)")
_WORD = re.compile(r"[a-z]+")


def split_sentences(body: str) -> list[str]:
    return [s.strip() for s in _SPLIT.split(body.strip()) if s.strip()]


def form(text: str) -> str:
    """A mention's surface form as prompts show it: lower-cased unless it has inner capitals (CT, COPD, Lasix stays)."""
    t = re.sub(r"\s+", " ", text.strip())
    return t if any(ch.isupper() for ch in t[1:]) else t.lower()


def mentions_line(entities: list[PlannedEntity], relations: list[PlannedRelation], schema: Any) -> str:
    """How a group of mentions is written in a prompt: relation phrases by their template, then the rest."""
    used: set[int] = set()
    items: list[str] = []
    for r in relations:
        try:
            rt = schema.relation(r.label)
        except KeyError:
            continue
        if rt.rule == "negation" or r.head >= len(entities) or r.tail >= len(entities):
            continue
        h, t = entities[r.head], entities[r.tail]
        if h.negated:
            continue
        items.append(rt.template.format(head=form(h.text), tail=form(t.text), name=r.label))
        used |= {r.head, r.tail}
    for i, e in enumerate(entities):
        if i not in used and not e.negated:
            items.append(form(e.text))
    return "; ".join(dict.fromkeys(items)) or "none"


class EntityFirstOptions(StrategyOptions):
    unit: Literal["sentence", "document"] = "sentence"
    sentence_examples: int = Field(6, ge=1, le=24, description="seed sentences shown per sentence request")
    shared_examples: int = Field(5, ge=0, le=24, description="of those, how many every request of a round shows first (the same block, "
                                 "so the backend encodes it once for the round: prefix sharing); the others are chosen for each "
                                 "request (sentences with the same finding, closest to the request). 0: all chosen per request")
    retries: int = Field(1, ge=0, le=4, description="new attempts for a sentence that failed its checks")
    max_sentence_tokens: int = Field(32, ge=8, le=200)
    sentence_batch_size: int = Field(32, ge=1, le=256, description="sentence requests decoded together (a batch runs until its longest "
                                     "sentence ends, so fewer, larger batches waste fewer decoding steps)")
    relation_rate: float | None = Field(None, ge=0.0, le=1.0, description="probability of planning a related entity (default: as often as in the seeds)")
    verbalizer_rate: float = Field(0.5, ge=0.0, le=1.0, description="with a verbalizer: share of mentions worded from its bank instead of the seeds' mentions")
    max_context_sentences: int = Field(8, ge=0, le=32)
    types: list[str] | None = Field(None, description="entity types to plan (default: the schema's sample-able types)")
    rare_word_share: float = Field(0.1, ge=0.0, le=1.0, description="a word used by fewer than max(3, this share of the seeds) seeds is rare: a "
                                   "seed sentence with a rare word (or a number) that only one seed has may not be copied verbatim; templated "
                                   "sentences made of common words may")
    seed_pair_rate: float = Field(0.5, ge=0.0, le=1.0, description="without document labels: share of planned relations whose argument pair "
                                  "occurs in the seeds (plausible), the rest combine arguments freely (novel)")


@STRATEGIES.register("entity_first")
class EntityFirstStrategy(Strategy):
    name = "entity_first"
    survey_method = "entity-first generation (Tang et al. 2023: sample entities/relations, then generate text containing them)"
    description = "plans the mentions (and relations) of each document, then asks for sentences or a document that contain them"
    stage = Stage.CONTENT
    Config = EntityFirstOptions

    # -- setup: banks from the seeds -----------------------------------------------------------------------------
    def setup(self, env: StrategyEnv) -> None:
        from ..schemas import annotate

        o: EntityFirstOptions = self.options  # type: ignore[assignment]
        sch = env.schema
        env.content_plan = self.name
        env.sentence_mode = o.unit == "sentence"
        self.types = o.types or [e.name for e in sch.entities if e.sample]
        self.doc_types = [e.name for e in sch.entities if e.doc_label]
        self.by_label: dict[str, Counter[str]] = defaultdict(Counter)  # canonical -> surface forms
        self.by_type: dict[str, Counter[str]] = defaultdict(Counter)  # entity type -> surface forms
        self.tails: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)  # (canonical, relation) -> tail forms
        self.rel_count: Counter[tuple[str, str]] = Counter()
        self.canon_count: Counter[str] = Counter()
        self.rel_prior: Counter[str] = Counter()
        self.seed_pairs: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
        self.sentences: list[dict[str, Any]] = []  # seed sentences with their mention lines
        sent_count: Counter[str] = Counter()
        self.ctx_counts: dict[str, list[int]] = {"normal": [], "abnormal": []}
        self.ctx_positions: list[float] = []
        self.positions: dict[str, list[float]] = defaultdict(list)
        close = sch.document.close
        for r in env.seeds:
            body = self._body(r.text or "", sch.document.open, close)
            sents = split_sentences(body)
            n_ctx = 0
            for si, s in enumerate(sents):
                pos = (si + 0.5) / max(len(sents), 1)
                ann = annotate(s, sch, env.label_set)
                ents, rels = self._plan_from_annotation(ann, s)
                positive = [e for e in ents if e.label in self.types and not e.negated]
                # with document labels, a sentence is an entity sentence only if it states a finding/device: anatomy
                # alone ("The lungs are clear.", "The cardiomediastinal silhouette is normal.") is context, the
                # normal statements every real report is made of (counted as entity sentences they were never planned)
                carrying = [e for e in positive if e.label in self.doc_types] if self.doc_types else positive
                kind = "entity" if carrying else "context"
                sent_count[s.lower()] += 1
                self.sentences.append({"text": s, "line": mentions_line(ents, rels, sch) if carrying else "none", "kind": kind, "seed": r.id,
                                       "canon": sorted({e.canonical or e.label for e in positive}), "types": sorted({e.label for e in positive})})
                if kind == "context":
                    n_ctx += 1
                    self.ctx_positions.append(pos)
                for i, e in enumerate(ents):
                    if e.negated or e.label not in self.types:
                        continue
                    key = e.canonical or e.label
                    self.by_label[key][form(e.text)] += 1
                    self.by_type[e.label][form(e.text)] += 1
                    self.canon_count[key] += 1
                    self.positions[key].append(pos)
                    for rel in rels:
                        if rel.head == i:
                            t = ents[rel.tail]
                            self.tails[(key, rel.label)][form(t.text)] += 1
                            self.seed_pairs[rel.label].append((e.label, form(e.text), t.label, form(t.text)))
                            self.rel_count[(key, rel.label)] += 1
                            self.rel_prior[rel.label] += 1
            is_normal = env.normal_label is not None and r.labels == [env.normal_label]
            self.ctx_counts["normal" if is_normal else "abnormal"].append(min(n_ctx, o.max_context_sentences))
        # lexicon terms of entity types without seed mentions (e.g. the clinical schema's term lists)
        for e in sch.entities:
            if e.name in self.types or any(e.name in rt.tail for rt in sch.relations):
                for canon, terms in e.terms.items():
                    for t in terms:
                        self.by_type[e.name].setdefault(form(t), 0)
                        if e.doc_label:
                            self.by_label[canon].setdefault(form(t), 0)
        # a sentence is private-looking (never to be copied verbatim) if only one seed has it, it is not short and it
        # carries a rare word or a number; templated sentences made only of words most seeds use ("The
        # cardiomediastinal silhouette is normal in size and contour.") identify no one and may be reused
        df: Counter[str] = Counter(w for r in env.seeds for w in set(_WORD.findall((r.text or "").lower())))
        rare_below = max(3, math.ceil(o.rare_word_share * len(env.seeds)))
        self.distinctive = {s for s, k in sent_count.items() if k == 1 and len(s.split()) >= 6
                            and (any(ch.isdigit() for ch in s) or any(df[w] < rare_below for w in _WORD.findall(s)))}
        missing = [lab for lab in env.label_set if lab != env.normal_label and not self.by_label.get(lab)]
        if missing:
            env.figure("labels_without_seed_mentions", missing, "labels with no mention in any seed: their mentions are the schema's label words")
        env.sections["entity_first"] = {"unit": o.unit, "seed_sentences": len(self.sentences),
                                        "entity_sentences": sum(s["kind"] == "entity" for s in self.sentences),
                                        "mention_forms": {k: len(v) for k, v in sorted(self.by_label.items())}}

    @staticmethod
    def _body(text: str, open_: str, close: str | None) -> str:
        body = text
        if open_ and open_ in body:
            body = body.split(open_, 1)[1]
        if close and close in body:
            body = body.split(close, 1)[0]
        return body.strip()

    def _plan_from_annotation(self, ann: Any, text: str) -> tuple[list[PlannedEntity], list[PlannedRelation]]:
        ents: list[PlannedEntity] = []
        idx: dict[int, int] = {}
        cue = None
        mentions = {(m.start, m.end, m.label): m for m in ann.mentions}
        for i, s in enumerate(ann.spans):
            m = mentions.get((s.start, s.end, s.label))
            if m is None:  # negation cue spans
                cue = cue or s
                continue
            idx[i] = len(ents)
            ents.append(PlannedEntity(s.label, s.text, m.canonical, m.negated))
        rels = [PlannedRelation(r.label, idx[r.head], idx[r.tail]) for r in ann.relations if r.head in idx and r.tail in idx]
        return ents, rels

    # -- planning ------------------------------------------------------------------------------------------------
    def _surface(self, canon: str, etype: str, env: StrategyEnv, rng: random.Random) -> str:
        o: EntityFirstOptions = self.options  # type: ignore[assignment]
        forms = self.by_label.get(canon)
        if "verbalizer" in env.active and rng.random() < o.verbalizer_rate:
            return env.verbalize(canon, rng, None)
        if forms:
            items = list(forms)
            return rng.choices(items, weights=[forms[f] + 1 for f in items])[0]
        return env.verbalize(canon, rng, None)

    def _etype_of(self, canon: str, env: StrategyEnv) -> str:
        for e in env.schema.entities:
            if e.doc_label and (canon in e.lexicon or canon in e.terms):
                return e.name
        return self.doc_types[0] if self.doc_types else self.types[0]

    def _unit_for(self, canon: str, etype: str, env: StrategyEnv, rng: random.Random) -> Unit:
        o: EntityFirstOptions = self.options  # type: ignore[assignment]
        ents = [PlannedEntity(etype, self._surface(canon, etype, env, rng), canon, False)]
        rels: list[PlannedRelation] = []
        for rt in env.schema.relations:
            if rt.rule == "negation" or etype not in rt.head:
                continue
            n = self.rel_count[(canon, rt.name)]
            rate = o.relation_rate if o.relation_rate is not None else n / max(self.canon_count[canon], 1)
            if rng.random() >= rate:
                continue
            tails = self.tails.get((canon, rt.name)) or Counter({f: 1 for t in rt.tail for f in self.by_type.get(t, {})})
            if not tails:
                continue
            items = sorted(tails)
            tail = rng.choices(items, weights=[tails[f] + 1 for f in items])[0]
            ttype = rt.tail[0] if len(rt.tail) == 1 else self._type_of_form(tail, rt.tail)
            ents.append(PlannedEntity(ttype, tail, None, False))
            rels.append(PlannedRelation(rt.name, 0, len(ents) - 1))
        pos = self.positions.get(canon) or [0.5]
        return Unit(ents, rels, "entity", sum(pos) / len(pos) + rng.uniform(-0.15, 0.15))

    def _type_of_form(self, form: str, types: list[str]) -> str:
        for t in types:
            if form in self.by_type.get(t, {}):
                return t
        return types[0]

    def _relation_unit(self, env: StrategyEnv, rng: random.Random) -> Unit | None:
        rts = [rt for rt in env.schema.relations if rt.rule != "negation"]
        if not rts:
            t = rng.choice(self.types)
            forms = sorted(self.by_type.get(t, {}))
            return Unit([PlannedEntity(t, rng.choice(forms))], [], "entity", rng.random()) if forms else None
        o: EntityFirstOptions = self.options  # type: ignore[assignment]
        rt = rng.choices(rts, weights=[self.rel_prior[r.name] + 1 for r in rts])[0]
        pairs = self.seed_pairs.get(rt.name)
        if pairs and rng.random() < o.seed_pair_rate:
            ht, h, tt, t = rng.choice(pairs)
            return Unit([PlannedEntity(ht, h), PlannedEntity(tt, t)], [PlannedRelation(rt.name, 0, 1)], "entity", rng.random())
        ht = rng.choice(rt.head)
        tt = rng.choice(rt.tail)
        hf, tf = sorted(self.by_type.get(ht, {})), sorted(self.by_type.get(tt, {}))
        if not hf or not tf:
            return None
        h = rng.choice(hf)
        t = rng.choice([f for f in tf if f != h] or tf)
        return Unit([PlannedEntity(ht, h), PlannedEntity(tt, t)], [PlannedRelation(rt.name, 0, 1)], "entity", rng.random())

    def plan(self, job: Job, env: StrategyEnv) -> None:
        o: EntityFirstOptions = self.options  # type: ignore[assignment]
        rng = job.rng
        units: list[Unit] = []
        if self.doc_types and env.label_set:
            for canon in [lab for lab in job.plan.labels if lab != env.normal_label]:
                units.append(self._unit_for(canon, self._etype_of(canon, env), env, rng))
            group = "normal" if job.plan.labels == [env.normal_label] else "abnormal"
        else:
            n = rng.choice([1, 1, 2, 2, 3])
            for _ in range(n):
                u = self._relation_unit(env, rng)
                if u is not None:
                    units.append(u)
            group = "abnormal"
        counts = self.ctx_counts.get(group) or self.ctx_counts["normal"] + self.ctx_counts["abnormal"] or [2]
        n_ctx = min(rng.choice(counts), o.max_context_sentences)
        if not units and n_ctx == 0:
            n_ctx = 1
        for _ in range(n_ctx):
            pos = rng.choice(self.ctx_positions) if self.ctx_positions else rng.random()
            units.append(Unit([], [], "context", pos + rng.uniform(-0.1, 0.1)))
        ents: list[PlannedEntity] = []
        rels: list[PlannedRelation] = []
        for u in units:
            off = len(ents)
            ents += u.entities
            rels += [PlannedRelation(r.label, r.head + off, r.tail + off) for r in u.relations]
        job.plan.entities, job.plan.relations, job.plan.units = ents, rels, units
        job.notes["planned_mentions"] = [e.text for e in ents]

    def describe(self, plan: Plan, env: StrategyEnv, rng: random.Random, target: bool) -> list[tuple[str, str]]:
        by_type: dict[str, tuple[list[PlannedEntity], list[PlannedRelation]]] = {}
        # group each head type with the relations it heads (tails are written inside relation phrases)
        tails = {r.tail for r in plan.relations}
        lines = []
        for etype in self.types:
            idx = [i for i, e in enumerate(plan.entities) if e.label == etype and not e.negated and i not in tails]
            if not idx and etype not in self.doc_types:
                continue
            keep = set(idx) | {r.tail for r in plan.relations if r.head in idx}
            remap = {old: new for new, old in enumerate(sorted(keep))}
            ents = [plan.entities[i] for i in sorted(keep)]
            rels = [PlannedRelation(r.label, remap[r.head], remap[r.tail]) for r in plan.relations if r.head in remap and r.tail in remap]
            by_type[etype] = (ents, rels)
        for etype, (ents, rels) in by_type.items():
            words = env.schema.entity(etype).words
            key = (words[:-1] + "ies") if words.endswith("y") else words + "s"
            lines.append((key.capitalize(), mentions_line(ents, rels, env.schema)))
        return lines

    # -- sentence mode -------------------------------------------------------------------------------------------
    def shared_block(self, env: StrategyEnv, rng: random.Random) -> list[dict[str, Any]]:
        """The example sentences every request of one round shows first (``shared_examples`` of them: entity
        sentences and one context sentence, in random order); empty when ``shared_examples`` is 0."""
        o: EntityFirstOptions = self.options  # type: ignore[assignment]
        n = min(o.shared_examples, o.sentence_examples)
        if n <= 0:
            return []
        ents = [s for s in self.sentences if s["kind"] == "entity"]
        ctx = [s for s in self.sentences if s["kind"] == "context"]
        chosen = rng.sample(ctx, min(len(ctx), 1))
        chosen += rng.sample(ents, min(len(ents), n - len(chosen)))
        rng.shuffle(chosen)
        return chosen

    def sentence_prompt(self, unit: Unit, env: StrategyEnv, rng: random.Random,
                        shared: list[dict[str, Any]] | None = None) -> tuple[str, list[str]]:
        """The prompt for one sentence unit and the seed ids whose sentences it shows. With ``shared`` (the round's
        :meth:`shared_block`), those sentences come first and only the rest are chosen for this unit."""
        o: EntityFirstOptions = self.options  # type: ignore[assignment]
        want = {e.canonical or e.label for e in unit.entities}
        ents = [s for s in self.sentences if s["kind"] == "entity"]
        ctx = [s for s in self.sentences if s["kind"] == "context"]
        k = o.sentence_examples
        if shared:
            own_n = max(k - len(shared), 1)
            pool = ents if unit.kind == "entity" else ctx
            pool = [s for s in pool if s not in shared]
            same = [s for s in pool if want & set(s["canon"])] if unit.kind == "entity" else []
            own = rng.sample(same, min(len(same), own_n))
            rest = [s for s in pool if s not in own]
            own += rng.sample(rest, min(len(rest), own_n - len(own)))
            own.sort(key=lambda s: (bool(want & set(s["canon"])), rng.random()))  # most relevant last
            chosen = list(shared) + own
        elif unit.kind == "entity":
            same = [s for s in ents if want & set(s["canon"])]
            chosen = rng.sample(same, min(len(same), max(1, k // 2)))
            others = [s for s in ents if s not in chosen]
            chosen += rng.sample(others, min(len(others), k - len(chosen) - 1))
            chosen += rng.sample(ctx, min(len(ctx), max(k - len(chosen), 0)))
            # most relevant last (closest to the open request)
            chosen.sort(key=lambda s: (bool(want & set(s["canon"])), rng.random()))
        else:
            chosen = rng.sample(ctx, min(len(ctx), k - 1)) + rng.sample(ents, min(len(ents), 1))
            rng.shuffle(chosen)
        head = env.schema.document.header.split(".")[0]
        parts = [f"{head}: single sentences, each after the list of what it mentions.\n\n"]
        for s in chosen:
            parts.append(f"Mentions: {s['line']}\nSentence: {s['text']}\n\n")
        parts.append(f"Mentions: {mentions_line(unit.entities, unit.relations, env.schema)}\nSentence:")
        return "".join(parts), sorted({s["seed"] for s in chosen})

    def check_sentence(self, unit: Unit, completion: str, finish: str, env: StrategyEnv) -> tuple[str | None, str | None]:
        """(sentence, None) if the completion is a usable sentence for ``unit``, else (None, reason)."""
        from ..schemas import annotate
        from ..spans import MentionRef, SpanStats, locate

        s = completion.split("\n")[0].strip()
        s = re.sub(r"\s+", " ", s)
        if finish == "length" and not s.endswith((".", "!", "?")):
            k = max(s.rfind(". "), s.rfind("! "), s.rfind("? "))
            if k < 0:
                return None, "sentence_incomplete"
            s = s[: k + 1]
        if s and s[-1] not in ".!?":
            s += "."
        parts = split_sentences(s)
        if unit.kind == "context" and len(parts) > 1:
            s = parts[0]
        n_words = len(s.split())
        if n_words < 2 or n_words > 60:
            return None, "sentence_length"
        if ":" in s or sum(ch.isascii() for ch in s) < 0.97 * len(s) or "http" in s.lower() or "<" in s:
            return None, "sentence_malformed"
        if s.lower() in self.distinctive:
            return None, "copies_seed_sentence"
        ann = annotate(s, env.schema, env.label_set)
        if unit.kind == "context":
            doc = {e.name for e in env.schema.entities if e.doc_label}
            if any(m.label in doc and not m.negated for m in ann.mentions):
                return None, "context_has_finding"
            return s, None
        st = SpanStats()
        for e in unit.entities:
            found = locate(s, [MentionRef(e.text, e.label)], st)
            if found:
                continue
            same = [m for m in ann.mentions if not m.negated and m.label == e.label and (e.canonical is None or m.canonical == e.canonical)]
            if not same:
                return None, "sentence_missing_entity"
        if any(m.negated and (m.canonical in {e.canonical for e in unit.entities if e.canonical}) for m in ann.mentions):
            return None, "sentence_negates_entity"
        return s, None

    def assemble(self, job: Job, sentences: list[tuple[Unit, str]], env: StrategyEnv) -> str:
        ordered = sorted(sentences, key=lambda us: us[0].order)
        body = " ".join(s for _, s in ordered)
        return f"{env.schema.document.open} {body}".strip()


