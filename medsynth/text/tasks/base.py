"""The task contract: render a planned job into a document prompt, parse a completion into a text, annotate it.

A task owns the document format (from the schema, e.g. "FINDINGS: … IMPRESSION: …"), turns the strategies'
header lines into a document-to-continue prompt (the base model is not instruction-tuned), repairs what can be
repaired in a completion (a second report started, a degenerate loop, a missing closing section — completed by a
short continuation), and annotates the final text with verified spans, relations and document labels.

Tasks differ in what they emit: ``classification`` (document labels, plus the label evidence spans),
``ner`` (every entity span of the schema, plus document labels when the schema has them), ``relations``
(spans and relations). Registered in :data:`TASKS`.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ...data.records import Relation, Span
from ...registry import Registry
from ..schemas import DocumentFormat, Schema, annotate

__all__ = ["Task", "ParseResult", "TASKS", "get_task"]

TASKS: Registry[Any] = Registry("task", ["medsynth.text.tasks.classification", "medsynth.text.tasks.ner", "medsynth.text.tasks.relations"])


@dataclass
class ParseResult:
    text: str | None
    reason: str | None = None
    needs_close: bool = False
    repairs: list[str] = field(default_factory=list)
    model_spans: list[Span] = field(default_factory=list)


def _is_ascii_text(s: str) -> bool:
    return sum(ch.isascii() for ch in s) >= 0.97 * max(len(s), 1)


class Task:
    name: ClassVar[str] = "task"
    emits: ClassVar[frozenset[str]] = frozenset({"labels"})

    def __init__(self, schema: Schema, document: DocumentFormat | None = None, label_set: list[str] | None = None,
                 output: Literal["plain", "inline"] = "plain", min_chars: int = 40):
        self.schema = schema
        self.doc = document or schema.document
        self.label_set = list(label_set or [])
        self.output = output
        self.min_chars = min_chars

    # -- prompts ---------------------------------------------------------------------------------------------------
    def header_lines(self, plan: Any, env: Any, strategies: list[Any], rng: random.Random, target: bool) -> list[tuple[str, str]]:
        lines: list[tuple[str, str]] = []
        for s in strategies:
            lines += s.describe(plan, env, rng, target)
        return lines

    def example_text(self, record: Any) -> str:
        text = (record.text or "").strip()
        if self.output == "inline" and record.spans:
            return mark_inline(text, record.spans)
        return text

    def render(self, job: Any, env: Any, strategies: list[Any], n_examples: int | None = None) -> str:
        """Header, in-context example blocks (their header lines + text), then the open target block."""
        rng = random.Random(job.rng.random())
        sep = self.doc.block_separator
        parts = [self.doc.header.strip() + sep]
        keys: set[str] = set()
        exs = job.examples if n_examples is None else job.examples[:n_examples]
        for ex in exs:
            lines = self.header_lines(env.plan_of(ex), env, strategies, rng, target=False)
            keys |= {k for k, _ in lines}
            parts.append("".join(f"{k}: {v}\n" for k, v in lines) + self.example_text(ex) + sep)
        lines = self.header_lines(job.plan, env, strategies, rng, target=True)
        keys |= {k for k, _ in lines}
        job.notes["_header_keys"] = sorted(keys)
        head = "".join(f"{k}: {v}\n" for k, v in lines)
        if job.prefix:
            return "".join(parts) + head + job.prefix + ("\n" + self.doc.close if self.doc.close else "")
        return "".join(parts) + head + self.doc.open

    def head_of_completion(self, job: Any) -> str:
        """The document text that precedes the model's completion."""
        if job.prefix:
            return job.prefix + ("\n" + self.doc.close if self.doc.close else "")
        return self.doc.open

    def continuation_prompt(self, prompt: str, job: Any, body: str) -> str:
        """Prompt that asks for the missing closing section after ``body`` (the document so far)."""
        head = self.head_of_completion(job)
        return prompt[: len(prompt) - len(head)] + body.rstrip() + "\n" + (self.doc.close or "")

    # -- parsing ---------------------------------------------------------------------------------------------------
    def parse(self, completion: str, finish_reason: str, job: Any, allow_continue: bool = True) -> ParseResult:
        repairs: list[str] = []
        head = self.head_of_completion(job)
        raw = head + completion
        model_spans: list[Span] = []
        if self.output == "inline":
            from ..spans import SpanStats, parse_inline

            st = SpanStats()
            raw, model_spans = parse_inline(raw, stats=st)
            repairs += [f"markup:{k}" for k in st.rejected]
        lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in raw.split("\n")]
        # the model began the next example block (one of the prompt's header keys): cut there
        keys = tuple(f"{k}:" for k in job.notes.get("_header_keys", []))
        for i, ln in enumerate(lines):
            if i > 0 and keys and ln.startswith(keys):
                lines = lines[:i]
                repairs.append("cut_next_block")
                break
        text = "\n".join(ln for ln in lines if ln)
        # a second document started
        o = self.doc.open
        k = text.find(o, len(o)) if o else -1
        if k > 0:
            text = text[:k].rstrip()
            repairs.append("cut_second_document")
        c = self.doc.close
        if c and text.count(c) > 1:
            first = text.find(c)
            text = text[: text.find(c, first + len(c))].rstrip()
            repairs.append("cut_second_close")
        cut = _cut_repetition(text)
        if cut is not None:
            text = cut
            repairs.append("cut_repetition")
        if not _is_ascii_text(text) or "http" in text.lower() or "<" in text or "{" in text:
            return ParseResult(None, "garbage", repairs=repairs)
        if finish_reason == "length":
            text = _cut_to_sentence(text, head)
            repairs.append("cut_unfinished_sentence")
        if c:
            after = text.split(c, 1)[1].strip() if c in text else ""
            if len(after) < self.doc.min_close_chars:
                body = text.split(c, 1)[0].rstrip() if c in text else text
                if len(body) - len(o) < 8:
                    return ParseResult(None, "too_short", repairs=repairs)
                if allow_continue:
                    return ParseResult(body, None, needs_close=True, repairs=repairs)
                return ParseResult(None, "incomplete" if finish_reason == "length" else "no_close", repairs=repairs)
        if len(text) < self.min_chars:
            return ParseResult(None, "too_short", repairs=repairs)
        return ParseResult(text, None, repairs=repairs, model_spans=model_spans)

    # -- annotation ------------------------------------------------------------------------------------------------
    def annotate(self, text: str) -> tuple[list[str], list[Span], list[Relation]]:
        ann = annotate(text, self.schema, self.label_set or None)
        spans, rels = self.select(ann.spans, ann.relations)
        return ann.labels, spans, rels

    def select(self, spans: list[Span], relations: list[Relation]) -> tuple[list[Span], list[Relation]]:
        """Keep the spans/relations this task emits (re-indexing relations)."""
        keep = [i for i, s in enumerate(spans) if self.keeps(s.label)]
        new = {old: n for n, old in enumerate(keep)}
        rels = [Relation(head=new[r.head], tail=new[r.tail], label=r.label) for r in relations
                if "relations" in self.emits and r.head in new and r.tail in new]
        return [spans[i] for i in keep], rels

    def keeps(self, label: str) -> bool:
        return "spans" in self.emits

    @property
    def span_labels(self) -> list[str]:
        return [lab for lab in self.schema.entity_labels if self.keeps(lab)]

    @property
    def relation_types(self) -> dict[str, tuple[list[str], list[str]]]:
        cue = [self.schema.negation_cue_label] if self.schema.negation_cue_label else []
        return {r.name: (r.head, cue if r.rule == "negation" else r.tail) for r in self.schema.relations}


def mark_inline(text: str, spans: list[Span]) -> str:
    """``[mention](LABEL)`` markup of non-overlapping spans (longest first), for inline-output prompts."""
    chosen: list[Span] = []
    for s in sorted(spans, key=lambda s: (-(s.end - s.start), s.start)):
        if not any(s.start < o.end and o.start < s.end for o in chosen):
            chosen.append(s)
    out, pos = [], 0
    for s in sorted(chosen, key=lambda s: s.start):
        out += [text[pos:s.start], f"[{text[s.start:s.end]}]({s.label})"]
        pos = s.end
    return "".join(out) + text[pos:]


def _cut_to_sentence(text: str, head: str) -> str:
    """Drop an unfinished last sentence (the completion ran out of tokens)."""
    if text.rstrip().endswith((".", "!", "?")):
        return text
    k = max(text.rfind(". "), text.rfind(".\n"), text.rfind("? "), text.rfind("! "))
    if k >= len(head):
        return text[: k + 1]
    return text


def _cut_repetition(text: str) -> str | None:
    """If a sentence (≥ 12 chars) occurs 3+ times, cut the text before its second occurrence."""
    sents = [(m.start(), m.group(0).strip().lower()) for m in re.finditer(r"[^.\n]+[.\n]?", text)]
    cnt = Counter(s for _, s in sents if len(s) >= 12)
    rep = [s for s, n in cnt.items() if n >= 3]
    if not rep:
        return None
    seen: set[str] = set()
    for pos, s in sents:
        if s in rep and s in seen:
            return text[:pos].rstrip()
        seen.add(s)
    return None


def get_task(name: str, schema: Schema, **kw: Any) -> Task:
    return TASKS.get(name)(schema, **kw)
