"""Span integrity: parse model output into spans, locate mentions, verify offsets, resolve overlaps, repair or reject.

Every span that leaves the ``generate`` step (and every span an export writes) satisfies ``text[start:end] ==
span.text``, has a label of the schema, and — under the default policy — does not overlap another span. What cannot
be repaired is rejected, and every repair and rejection is counted by reason (:class:`SpanStats`), so the report
says exactly what happened.

Sources of spans:

- inline markup in the model output: ``[mention](LABEL)`` (Markdown-link style) or ``<LABEL>mention</LABEL>``
  (XML style), removed from the text (:func:`parse_inline`);
- entity lists: JSON (``[{"text": .., "label": ..}]`` or ``[[text, label], ...]``), ``LABEL: a; b`` lines or
  ``mention (LABEL)`` items (:func:`parse_entity_list`), located in the text (:func:`locate`);
- the schema annotator (offsets computed on the text itself) and planned entities (entity-first generation), located.

Repairs (:func:`verify_and_repair`): boundary whitespace/punctuation trimmed, offsets shifted to the nearest exact
occurrence, case mismatch taken from the text, unique relocation. Overlap policies (:func:`resolve_overlaps`):
``keep_longest`` (default), ``keep_first``, ``allow_nested`` (nesting kept, crossing spans resolved longest-first),
``allow`` (no resolution; flat exports then pick the longest), ``reject`` (overlaps reject the record).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ..data.records import Relation, Span

__all__ = ["SpanStats", "MentionRef", "parse_inline", "parse_entity_list", "locate", "verify_and_repair", "resolve_overlaps",
           "enforce", "IntegrityResult", "OverlapPolicy"]

OverlapPolicy = Literal["keep_longest", "keep_first", "allow_nested", "allow", "reject"]


@dataclass
class SpanStats:
    """Counts of span repairs and rejections by reason (``rejected:<reason>``, ``repaired:<reason>``)."""

    counts: Counter[str] = field(default_factory=Counter)

    def reject(self, reason: str, n: int = 1) -> None:
        self.counts[f"rejected:{reason}"] += n

    def repair(self, reason: str, n: int = 1) -> None:
        self.counts[f"repaired:{reason}"] += n

    @property
    def rejected(self) -> dict[str, int]:
        return {k.split(":", 1)[1]: v for k, v in self.counts.items() if k.startswith("rejected:")}

    @property
    def repaired(self) -> dict[str, int]:
        return {k.split(":", 1)[1]: v for k, v in self.counts.items() if k.startswith("repaired:")}

    def update(self, other: SpanStats) -> None:
        self.counts.update(other.counts)


@dataclass(frozen=True)
class MentionRef:
    """A mention to find in a text: its surface form, its label, optionally where it is expected."""

    text: str
    label: str
    hint: int | None = None


# -- parsing -------------------------------------------------------------------------------------------------
_MD = re.compile(r"\[([^\[\]\n]{1,200}?)\]\(([A-Za-z][A-Za-z0-9_ -]{0,40})\)")
_XML = re.compile(r"<([A-Za-z][A-Za-z0-9_]{0,40})>([^<>\n]{1,200}?)</\1>")
_STRAY = re.compile(r"</?[A-Za-z][A-Za-z0-9_]{0,40}>|\]\([A-Za-z][A-Za-z0-9_ -]{0,40}\)")


def parse_inline(marked: str, style: Literal["auto", "markdown", "xml"] = "auto", stats: SpanStats | None = None) -> tuple[str, list[Span]]:
    """Strip inline entity markup; return (clean text, spans with offsets into the clean text). Labels are
    normalised to upper case with '_' for spaces. Unbalanced tags are removed and counted ``malformed_markup``."""
    stats = stats if stats is not None else SpanStats()
    pats = {"markdown": [(_MD, 1, 2)], "xml": [(_XML, 2, 1)], "auto": [(_MD, 1, 2), (_XML, 2, 1)]}[style]
    hits: list[tuple[int, int, str, str]] = []
    for pat, ti, li in pats:
        for m in pat.finditer(marked):
            if any(m.start() < b and a < m.end() for a, b, _, _ in hits):
                continue
            hits.append((m.start(), m.end(), m.group(ti), m.group(li)))
    hits.sort()
    out, spans, pos = [], [], 0
    clean_len = 0
    for a, b, mention, label in hits:
        chunk = marked[pos:a]
        out.append(chunk)
        clean_len += len(chunk)
        lead = len(mention) - len(mention.lstrip())
        body = mention.strip()
        out.append(mention)
        if body:
            s = clean_len + lead
            spans.append(Span(start=s, end=s + len(body), label=label.strip().upper().replace(" ", "_").replace("-", "_"), text=body))
        else:
            stats.reject("empty_mention")
        clean_len += len(mention)
        pos = b
    out.append(marked[pos:])
    text = "".join(out)
    stray = list(_STRAY.finditer(text))
    if stray:
        stats.reject("malformed_markup", len(stray))
        # remove stray tags, shifting the spans after each one
        for m in reversed(stray):
            a, b = m.start(), m.end()
            text = text[:a] + text[b:]
            kept = []
            for s in spans:
                if s.start >= b:
                    kept.append(Span(start=s.start - (b - a), end=s.end - (b - a), label=s.label, text=s.text))
                elif s.end <= a:
                    kept.append(s)
                else:
                    stats.reject("malformed_markup")
            spans = kept
    return text, spans


_ITEM = re.compile(r"^\s*(.+?)\s*[\(\[]\s*([A-Za-z][A-Za-z0-9_ -]{0,40})\s*[\)\]]\s*$")


def parse_entity_list(block: str, labels: list[str] | None = None, stats: SpanStats | None = None) -> list[MentionRef]:
    """Entities listed by a model: JSON, ``LABEL: a; b`` lines, or ``mention (LABEL)`` items separated by ';' or
    newlines. With ``labels``, unknown labels are rejected (``unknown_label``); label matching ignores case."""
    stats = stats if stats is not None else SpanStats()
    canon = {lab.upper().replace(" ", "_"): lab for lab in labels} if labels else None
    out: list[MentionRef] = []

    def add(text: str, label: str) -> None:
        text = text.strip().strip("\"'").strip()
        key = label.strip().upper().replace(" ", "_").replace("-", "_")
        if not text:
            stats.reject("empty_mention")
            return
        if canon is not None and key not in canon:
            stats.reject("unknown_label")
            return
        out.append(MentionRef(text, canon[key] if canon is not None else key))

    s = block.strip()
    if s.startswith(("[", "{")):
        try:
            data = json.loads(s)
            items = data.get("entities", []) if isinstance(data, dict) else data
            for it in items:
                if isinstance(it, dict) and "text" in it and ("label" in it or "type" in it):
                    add(str(it["text"]), str(it.get("label", it.get("type"))))
                elif isinstance(it, (list, tuple)) and len(it) >= 2:
                    add(str(it[0]), str(it[1]))
                else:
                    stats.reject("unparsable_entity")
            return out
        except (json.JSONDecodeError, AttributeError, TypeError):
            stats.reject("unparsable_entity_list")
            return out
    for line in s.splitlines():
        line = line.strip().lstrip("-*• ").strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z][A-Za-z0-9_ -]{0,40}):\s*(.+)$", line)
        if m and (canon is None or m.group(1).strip().upper().replace(" ", "_") in canon):
            for item in re.split(r"\s*[;,]\s*", m.group(2)):
                if item.strip():
                    add(item, m.group(1))
            continue
        for item in re.split(r"\s*;\s*", line):
            im = _ITEM.match(item)
            if im:
                add(im.group(1), im.group(2))
            elif item.strip():
                stats.reject("unparsable_entity")
    return out


# -- locating and verifying ------------------------------------------------------------------------------------
def _occurrences(text: str, mention: str) -> list[tuple[int, int]]:
    """Word-bounded occurrences in text order, case-insensitive, with flexible whitespace."""
    m = mention.strip()
    if not m:
        return []
    bound_l = r"(?<!\w)" if m[0].isalnum() else ""
    bound_r = r"(?!\w)" if m[-1].isalnum() else ""
    body = r"\s+".join(re.escape(w) for w in m.split())
    return [(x.start(), x.end()) for x in re.finditer(bound_l + body + bound_r, text, re.I)]


def locate(text: str, mentions: list[MentionRef], stats: SpanStats | None = None, taken: list[Span] | None = None) -> list[Span]:
    """Find each mention in ``text`` (case-insensitive, flexible whitespace, word-bounded): among the occurrences
    not already used by a span of the same label, the one nearest its hint, else the first. Mentions that do not
    occur are rejected (``not_found``); a mention listed more often than it occurs, ``no_free_occurrence``."""
    stats = stats if stats is not None else SpanStats()
    used = {(s.start, s.end, s.label) for s in (taken or [])}
    out: list[Span] = []
    for mr in mentions:
        occ = _occurrences(text, mr.text)
        if not occ:
            stats.reject("not_found")
            continue
        free = [o for o in occ if (o[0], o[1], mr.label) not in used]
        if not free:
            stats.reject("no_free_occurrence")
            continue
        a, b = min(free, key=lambda o: abs(o[0] - mr.hint)) if mr.hint is not None else free[0]
        if text[a:b] != mr.text:
            stats.repair("case_or_whitespace")
        used.add((a, b, mr.label))
        out.append(Span(start=a, end=b, label=mr.label, text=text[a:b]))
    return out


_TRIM = " \t\n\r.,;:!?\"'()[]"


def verify_and_repair(text: str, spans: list[Span], stats: SpanStats | None = None, window: int = 40) -> tuple[list[Span], list[int]]:
    """Return (valid spans, index of each kept span in the input) after repairing what can be repaired.

    Repairs: ``trimmed`` (boundary whitespace/punctuation), ``case_fixed`` (same letters, other case: the text's
    form is kept), ``shifted`` (the exact text occurs within ``window`` characters), ``relocated`` (it occurs once
    elsewhere). Rejections: ``empty``, ``out_of_bounds`` without a unique relocation, ``offset_mismatch``."""
    stats = stats if stats is not None else SpanStats()
    out: list[Span] = []
    kept: list[int] = []
    n = len(text)
    for i, s in enumerate(spans):
        a, b, st = s.start, s.end, s.text
        if st.strip(_TRIM) == "" and (b <= a or text[a:b].strip(_TRIM) == ""):
            stats.reject("empty")
            continue
        if 0 <= a < b <= n and text[a:b] == st:
            core = st.strip()
            if core != st and core:  # valid but with boundary whitespace: trim (BIO tokens never include it)
                la = len(st) - len(st.lstrip())
                stats.repair("trimmed")
                s = Span(start=a + la, end=a + la + len(core), label=s.label, text=core)
            out.append(s)
            kept.append(i)
            continue
        fixed: tuple[int, int] | None = None
        reason = ""
        core = st.strip(_TRIM)
        if 0 <= a < b <= n:
            seg = text[a:b]
            if seg.strip(_TRIM) and seg.strip(_TRIM) == core:
                la = len(seg) - len(seg.lstrip(_TRIM))
                fixed, reason = (a + la, a + la + len(core)), "trimmed"
            elif seg.lower() == st.lower() and seg.strip(_TRIM) == seg:
                fixed, reason = (a, b), "case_fixed"
        if fixed is None and core:
            occ = _occurrences(text, core)
            near = [o for o in occ if abs(o[0] - a) <= window]
            if near:
                fixed, reason = min(near, key=lambda o: abs(o[0] - a)), "shifted"
            elif len(occ) == 1:
                fixed, reason = occ[0], "relocated"
        if fixed is None:
            stats.reject("out_of_bounds" if not (0 <= a < b <= n) else "offset_mismatch")
            continue
        stats.repair(reason)
        out.append(Span(start=fixed[0], end=fixed[1], label=s.label, text=text[fixed[0]:fixed[1]]))
        kept.append(i)
    return out, kept


def resolve_overlaps(spans: list[Span], policy: OverlapPolicy = "keep_longest", stats: SpanStats | None = None) -> tuple[list[Span], list[int], bool]:
    """Return (spans, index of each kept span in the input, record_ok). Identical duplicates are merged
    (``duplicate``); overlapping spans are dropped by policy (``overlap``). ``reject`` keeps all spans but returns
    record_ok=False if any overlap."""
    stats = stats if stats is not None else SpanStats()
    seen: dict[tuple[int, int, str], int] = {}
    uniq: list[int] = []
    for i, s in enumerate(spans):
        k = (s.start, s.end, s.label)
        if k in seen:
            stats.reject("duplicate")
            continue
        seen[k] = i
        uniq.append(i)
    if policy == "allow":
        return [spans[i] for i in uniq], uniq, True

    def crosses(x: Span, y: Span) -> bool:
        return x.start < y.end and y.start < x.end

    def nested(x: Span, y: Span) -> bool:
        return (x.start <= y.start and y.end <= x.end) or (y.start <= x.start and x.end <= y.end)

    if policy == "reject":
        bad = any(crosses(spans[i], spans[j]) for a, i in enumerate(uniq) for j in uniq[a + 1:])
        if bad:
            stats.reject("overlap_record")
        return [spans[i] for i in uniq], uniq, not bad
    order = list(uniq) if policy == "keep_first" else sorted(uniq, key=lambda i: (-(spans[i].end - spans[i].start), spans[i].start))
    chosen: list[int] = []
    for i in order:
        conflict = [j for j in chosen if crosses(spans[i], spans[j]) and not (policy == "allow_nested" and nested(spans[i], spans[j]))]
        if conflict:
            stats.reject("overlap")
            continue
        chosen.append(i)
    chosen.sort(key=lambda i: (spans[i].start, spans[i].end))
    return [spans[i] for i in chosen], chosen, True


@dataclass
class IntegrityResult:
    spans: list[Span]
    relations: list[Relation]
    ok: bool
    stats: SpanStats


def enforce(text: str, spans: list[Span], relations: list[Relation] | None = None, *, labels: list[str] | None = None,
            relation_types: dict[str, tuple[list[str], list[str]]] | None = None, overlaps: OverlapPolicy = "keep_longest",
            stats: SpanStats | None = None) -> IntegrityResult:
    """The whole integrity pipeline on one text: label check, verify/repair, overlap resolution, relation remap.

    Relations whose endpoint was dropped are rejected (``relation_endpoint_dropped``); with ``relation_types``
    ({name: (head labels, tail labels)}) relations of unknown names or wrong argument types are rejected."""
    stats = stats if stats is not None else SpanStats()
    relations = list(relations or [])
    idx = list(range(len(spans)))
    if labels is not None:
        allowed = set(labels)
        keep = [i for i in idx if spans[i].label in allowed]
        stats.reject("unknown_label", len(idx) - len(keep))
        idx = keep
    good, kept = verify_and_repair(text, [spans[i] for i in idx], stats)
    idx = [idx[k] for k in kept]
    final, kept2, ok = resolve_overlaps(good, overlaps, stats)
    idx = [idx[k] for k in kept2]
    new_of = {old: new for new, old in enumerate(idx)}
    rels: list[Relation] = []
    seen: set[tuple[int, int, str]] = set()
    for r in relations:
        if r.head not in new_of or r.tail not in new_of:
            stats.reject("relation_endpoint_dropped")
            continue
        h, t = new_of[r.head], new_of[r.tail]
        if h == t:
            stats.reject("relation_self_loop")
            continue
        if relation_types is not None:
            if r.label not in relation_types:
                stats.reject("relation_unknown_type")
                continue
            heads, tails = relation_types[r.label]
            if final[h].label not in heads or final[t].label not in tails:
                stats.reject("relation_argument_types")
                continue
        if (h, t, r.label) in seen:
            stats.reject("relation_duplicate")
            continue
        seen.add((h, t, r.label))
        rels.append(Relation(head=h, tail=t, label=r.label))
    return IntegrityResult(final, rels, ok, stats)
