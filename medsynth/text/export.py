"""Exports of labelled text records to the formats NER/RE tools read, each checked by reading it back.

- ``jsonl``: medsynth records (the contract in docs/architecture.md), spans and relations included
- ``conll``: CoNLL-2003 style, one ``token TAG`` line per token (BIO), each document opened by the line
  ``-DOCSTART- -X- O O`` (what ``spacy convert -c ner`` and CoNLL-2003 readers expect; seqeval reads the tags). The
  metadata a column format has no room for — record id, document labels, the full span list, relations — is in the
  side file ``records.conll.meta.jsonl``, one line per document in the same order.
- ``brat``: standoff ``<id>.txt`` + ``<id>.ann`` (T spans, R relations with their argument types declared in
  ``annotation.conf``), document labels in ``doc_labels.json``
- ``spacy``: a ``DocBin`` (``.spacy``) with entity spans, ``doc.cats`` over the whole document label set, all spans
  (incl. overlapping ones) in ``doc.spans["sc"]`` and relations in ``doc.user_data["relations"]``
- ``hf``: a Hugging Face ``datasets`` folder (``save_to_disk``): text, tokens, ``ner_tags`` as a ``ClassLabel`` over
  the whole BIO tag set, ``labels`` as a ``ClassLabel`` over the document label set, spans, relations; a
  ``DatasetDict`` with deterministic splits when ``splits`` is given.

Tokens are words and punctuation, further cut at every span boundary, so every span is a whole number of tokens
and no span is lost or widened by a token-based format, even one an LLM placed inside a word. Only records whose
spans all verify (``text[start:end] == span.text``) are exported; otherwise export raises. Flat formats (BIO,
``doc.ents``) cannot hold overlapping spans: they keep the longest, and the others are counted as such in the
export check (the full list is in the JSONL, BRAT, spaCy ``doc.spans``, HF ``spans`` and the CoNLL side file).

After writing, :func:`export_records` reads every format back with the tool that consumes it (spaCy's ``DocBin``,
``datasets.load_from_disk``, seqeval's BIO decoder, the BRAT reader) and compares each span with the records:
``result.checks[fmt]`` says how many spans were recovered and why any were not. Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from ..data.records import Record, Relation, Span, id_ref, invalid_spans
from ..exceptions import DataFormatError

__all__ = ["export_records", "to_bio", "read_conll", "read_conll_meta", "read_conll_relations", "read_brat", "read_brat_docs", "read_spacy",
           "read_spacy_docs", "read_hf", "FORMATS", "BratDoc", "ExportResult", "bio_spans", "DOCSTART"]

FORMATS = ("jsonl", "conll", "brat", "spacy", "hf")
DOCSTART = "-DOCSTART- -X- O O"
_OVERLAP = "overlaps a longer span (a flat format keeps the longest; the full list is kept)"
_WORD = re.compile(r"\w+(?:[-'/]\w+)*|[^\w\s]")


class ExportResult(dict):  # type: ignore[type-arg]
    """``{format: path}`` plus ``checks``: ``{format: {"spans", "recovered", "lost": {reason: count}}}``."""

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, dict[str, Any]] = {}

    @property
    def spans_lost(self) -> int:
        """Spans not recovered from a format for any reason other than a flat format's overlap rule."""
        return sum(n for c in self.checks.values() for why, n in c["lost"].items() if why != _OVERLAP)


def _tokens(text: str, cuts: set[int] | frozenset[int] = frozenset()) -> list[tuple[int, int]]:
    """Word/punctuation tokens, cut again at every position in ``cuts`` (span boundaries) that falls inside one."""
    out = []
    for m in _WORD.finditer(text):
        a, b = m.span()
        for c in sorted(x for x in cuts if a < x < b):
            out.append((a, c))
            a = c
        out.append((a, b))
    return out


def _cuts(spans: list[Span]) -> set[int]:
    return {s.start for s in spans} | {s.end for s in spans}


def _check(records: list[Record]) -> None:
    for r in records:
        if invalid_spans(r):
            raise DataFormatError(f"record {id_ref(r.id)}: {len(invalid_spans(r))} span(s) do not match their text; refusing to export.")


def _safe_id(rid: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", rid) or rid.startswith("."):
        raise DataFormatError(f"record id {rid!r} cannot be a file name in a BRAT export; use letters, digits, '_', '-', '.'")


def _flat_spans(r: Record) -> list[Span]:
    """Non-overlapping spans (longest first) for flat formats (BIO)."""
    out: list[Span] = []
    for s in sorted(r.spans, key=lambda s: (-(s.end - s.start), s.start)):
        if not any(s.start < o.end and o.start < s.end for o in out):
            out.append(s)
    return sorted(out, key=lambda s: s.start)


def _bio_tags(r: Record, toks: list[tuple[int, int]]) -> list[str]:
    spans = _flat_spans(r)
    tags = []
    for a, b in toks:
        tag = "O"
        for s in spans:
            if a >= s.start and b <= s.end:
                tag = ("B-" if a == s.start else "I-") + s.label
                break
        tags.append(tag)
    return tags


def to_bio(r: Record) -> list[tuple[str, str]]:
    """(token, BIO tag) pairs of a record; tokens are cut at the boundaries of the spans BIO can hold."""
    text = r.text or ""
    toks = _tokens(text, _cuts(_flat_spans(r)))
    return [(text[a:b], t) for (a, b), t in zip(toks, _bio_tags(r, toks), strict=True)]


def _align(text: str, tokens: list[str]) -> list[tuple[int, int]] | None:
    """Character offsets of ``tokens`` read back from a token file (only whitespace may lie between them)."""
    out, pos = [], 0
    for t in tokens:
        i = text.find(t, pos)
        if i < 0 or text[pos:i].strip():
            return None
        out.append((i, i + len(t)))
        pos = i + len(t)
    return out


def bio_spans(text: str, tokens: list[str], tags: list[str]) -> set[tuple[int, int, str]] | None:
    """Character spans of a BIO-tagged token sequence, decoded by seqeval (None: tokens do not align with text)."""
    from seqeval.metrics.sequence_labeling import get_entities

    offs = _align(text, tokens)
    if offs is None:
        return None
    return {(offs[a][0], offs[b][1], lab) for lab, a, b in get_entities(list(tags))}


def _label_sets(records: list[Record], entity_labels: list[str] | None, doc_labels: list[str] | None) -> tuple[list[str], list[str]]:
    ents = list(dict.fromkeys([*(entity_labels or []), *sorted({s.label for r in records for s in r.spans})]))
    docs = list(dict.fromkeys([*(doc_labels or []), *sorted({lab for r in records for lab in r.labels})]))
    return ents, docs


def _split_of(rid: str, splits: dict[str, float]) -> str:
    h = int.from_bytes(hashlib.sha256(f"export-split:{rid}".encode()).digest()[:8], "big") / 2**64
    acc = 0.0
    names = list(splits)
    for name in names:
        acc += splits[name]
        if h < acc:
            return name
    return names[-1]


def export_records(records: list[Record], out_dir: str | Path, formats: list[str], *, entity_labels: list[str] | None = None,
                   doc_labels: list[str] | None = None, splits: dict[str, float] | None = None) -> ExportResult:
    """Write ``records`` in each of ``formats`` under ``out_dir``, then read each back and compare its spans.

    ``entity_labels`` / ``doc_labels``: the whole label sets (the schema's entity types, the document label set),
    so that label features and ``doc.cats`` cover labels no exported record happens to carry. ``splits``:
    ``{"train": 0.9, "validation": 0.1}`` gives the HF export deterministic splits (by a hash of the record id)."""
    _check(records)
    for f in formats:
        if f not in FORMATS:
            raise DataFormatError(f"unknown export format '{f}'; use one of {', '.join(FORMATS)}")
    if splits is not None:
        if not splits or any(v <= 0 for v in splits.values()) or abs(sum(splits.values()) - 1.0) > 1e-6:
            raise DataFormatError(f"export splits {splits} must be positive fractions summing to 1, e.g. {{train: 0.9, validation: 0.1}}")
    ents, docs = _label_sets(records, entity_labels, doc_labels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = ExportResult()
    for fmt in formats:
        if fmt == "hf" and not records:  # datasets cannot load an empty saved dataset: say so instead of writing one
            res.checks[fmt] = {"spans": 0, "recovered": 0, "lost": {}, "not_written": "no records to export"}
            continue
        writer = {"jsonl": _write_jsonl, "conll": _write_conll, "brat": _write_brat, "spacy": _write_spacy, "hf": _write_hf}[fmt]
        res[fmt] = writer(records, out_dir, ents, docs, splits)
        res.checks[fmt] = _CHECKERS[fmt](records, res[fmt])
    return res


def _write_jsonl(records: list[Record], out_dir: Path, ents: list[str], docs: list[str], splits: Any) -> Path:
    p = out_dir / "records.jsonl"
    p.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    return p


def _write_conll(records: list[Record], out_dir: Path, ents: list[str], docs: list[str], splits: Any) -> Path:
    p = out_dir / "records.conll"
    with open(p, "w", encoding="utf-8") as fh, open(out_dir / "records.conll.meta.jsonl", "w", encoding="utf-8") as meta:
        for r in records:
            bio = to_bio(r)
            fh.write(f"{DOCSTART}\n\n")
            fh.write("".join(f"{tok} {tag}\n" for tok, tag in bio))
            fh.write("\n")
            rels = [[x.label, [r.spans[x.head].start, r.spans[x.head].end, r.spans[x.head].label],
                     [r.spans[x.tail].start, r.spans[x.tail].end, r.spans[x.tail].label]] for x in r.relations]
            meta.write(json.dumps({"id": r.id, "labels": list(r.labels), "tokens": len(bio), "spans": [[s.start, s.end, s.label] for s in r.spans],
                                   "relations": rels}) + "\n")
    return p


def _write_brat(records: list[Record], out_dir: Path, ents: list[str], docs: list[str], splits: Any) -> Path:
    p = out_dir / "brat"
    p.mkdir(exist_ok=True)
    args: dict[str, tuple[set[str], set[str]]] = {}
    for r in records:
        for x in r.relations:
            a = args.setdefault(x.label, (set(), set()))
            a[0].add(r.spans[x.head].label)
            a[1].add(r.spans[x.tail].label)
    conf = ["[entities]", *ents, "[relations]"]
    conf += [f"{x}\tArg1:{'|'.join(sorted(h))}, Arg2:{'|'.join(sorted(t))}" for x, (h, t) in sorted(args.items())]
    (p / "annotation.conf").write_text("\n".join(conf) + "\n[events]\n[attributes]\n", encoding="utf-8")
    for r in records:
        _safe_id(r.id)
        (p / f"{r.id}.txt").write_text(r.text or "", encoding="utf-8")
        lines = [f"T{i + 1}\t{s.label} {s.start} {s.end}\t{s.text}" for i, s in enumerate(r.spans)]
        lines += [f"R{i + 1}\t{x.label} Arg1:T{x.head + 1} Arg2:T{x.tail + 1}" for i, x in enumerate(r.relations)]
        (p / f"{r.id}.ann").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    (p / "doc_labels.json").write_text(json.dumps({"label_set": docs, "labels": {r.id: r.labels for r in records}}), encoding="utf-8")
    return p


def _write_spacy(records: list[Record], out_dir: Path, ents: list[str], docs: list[str], splits: Any) -> Path:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    db = DocBin(store_user_data=True)
    for r in records:
        text = r.text or ""
        doc = _doc_from_text(nlp, text, _tokens(text, _cuts(r.spans)))
        doc.ents = [doc.char_span(s.start, s.end, label=s.label, alignment_mode="strict") for s in _flat_spans(r)]  # type: ignore[misc]
        doc.spans["sc"] = [doc.char_span(s.start, s.end, label=s.label, alignment_mode="strict") for s in r.spans]  # type: ignore[misc]
        doc.cats = {lab: float(lab in r.labels) for lab in docs}
        doc.user_data["id"] = r.id
        doc.user_data["spans"] = [[s.start, s.end, s.label] for s in r.spans]
        doc.user_data["relations"] = [[x.head, x.tail, x.label] for x in r.relations]
        db.add(doc)
    p = out_dir / "records.spacy"
    db.to_disk(p)
    return p


def _doc_from_text(nlp: Any, text: str, toks: list[tuple[int, int]]) -> Any:
    """A Doc whose text is exactly ``text``: whitespace runs other than one space become whitespace tokens (as
    spaCy's own tokenizer does), words are ``toks``."""
    from spacy.tokens import Doc

    words, spaces, pos = [], [], 0
    for a, b in [*toks, (len(text), len(text))]:
        gap = text[pos:a]
        if gap:
            if words and gap[0] == " " and not spaces[-1]:
                spaces[-1] = True
                gap = gap[1:]
            if gap:
                words.append(gap)
                spaces.append(False)
        if a < b:
            words.append(text[a:b])
            spaces.append(False)
        pos = b
    return Doc(nlp.vocab, words=words, spaces=spaces)


def _write_hf(records: list[Record], out_dir: Path, ents: list[str], docs: list[str], splits: dict[str, float] | None) -> Path:
    import datasets
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    datasets.disable_progress_bars()  # "Saving the dataset" bars are noise in a run's output
    bio_names = ["O"] + [f"{p}-{lab}" for lab in ents for p in ("B", "I")]
    rows: dict[str, list[Any]] = {"id": [], "text": [], "tokens": [], "ner_tags": [], "labels": [], "spans": [], "relations": []}
    for r in records:
        bio = to_bio(r)
        rows["id"].append(r.id)
        rows["text"].append(r.text or "")
        rows["tokens"].append([t for t, _ in bio])
        rows["ner_tags"].append([bio_names.index(g) for _, g in bio])
        rows["labels"].append([docs.index(lab) for lab in r.labels])
        rows["spans"].append([{"start": s.start, "end": s.end, "label": s.label, "text": s.text} for s in r.spans])
        rows["relations"].append([{"head": x.head, "tail": x.tail, "label": x.label} for x in r.relations])
    span_f = {"start": Value("int64"), "end": Value("int64"), "label": Value("string"), "text": Value("string")}
    rel_f = {"head": Value("int64"), "tail": Value("int64"), "label": Value("string")}
    feats = Features({"id": Value("string"), "text": Value("string"), "tokens": Sequence(Value("string")),
                      "ner_tags": Sequence(ClassLabel(names=bio_names)), "labels": Sequence(ClassLabel(names=docs or ["(none)"])),
                      "spans": [span_f], "relations": [rel_f]})
    p = out_dir / "hf_dataset"
    ds = Dataset.from_dict(rows, features=feats)
    if splits:
        which = [_split_of(rid, splits) for rid in rows["id"]]
        # a split with no record is left out (datasets cannot load an empty saved split); the check reports sizes
        dd = DatasetDict({name: Dataset.from_dict({k: [v[i] for i, w in enumerate(which) if w == name] for k, v in rows.items()}, features=feats)
                          for name in splits if name in which})
        dd.save_to_disk(str(p))
    else:
        ds.save_to_disk(str(p))
    return p


# -- read-back checks ---------------------------------------------------------------------------------------------
def _tally(records: list[Record], got: dict[str, tuple[set[tuple[int, int, str]], bool]]) -> dict[str, Any]:
    """``got``: {id: (spans read back, flat?)}; a flat format is compared with the non-overlapping spans."""
    total = rec = 0
    lost: Counter[str] = Counter()
    for r in records:
        want = {(s.start, s.end, s.label) for s in r.spans}
        total += len(want)
        if r.id not in got:
            lost["document missing from the export"] += len(want)
            continue
        spans, flat = got[r.id]
        flat_set = {(s.start, s.end, s.label) for s in _flat_spans(r)} if flat else want
        for w in want:
            if w in spans:
                rec += 1
            elif w not in flat_set:
                lost[_OVERLAP] += 1
            else:
                lost["not found at its offsets with its label"] += 1
    return {"spans": total, "recovered": rec, "lost": dict(lost)}


def _check_jsonl(records: list[Record], p: Path) -> dict[str, Any]:
    back = [Record.from_json(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return _tally(records, {r.id: ({(s.start, s.end, s.label) for s in r.spans}, False) for r in back})


def _check_conll(records: list[Record], p: Path) -> dict[str, Any]:
    docs = read_conll(p)
    by_id = {r.id: r for r in records}
    got = {}
    for rid, pairs in docs.items():
        r = by_id.get(rid)
        if r is None:
            continue
        sp = bio_spans(r.text or "", [t for t, _ in pairs], [g for _, g in pairs])
        got[rid] = (sp or set(), True)
    return _tally(records, got)


def _check_brat(records: list[Record], p: Path) -> dict[str, Any]:
    return _tally(records, {k: ({(s.start, s.end, s.label) for s in d.spans}, False) for k, d in read_brat_docs(p).items()})


def _check_spacy(records: list[Record], p: Path) -> dict[str, Any]:
    docs = read_spacy_docs(p)
    by_id = {r.id: r for r in records}
    got = {}
    for d in docs:
        rid = d.user_data.get("id")
        r = by_id.get(rid)
        if r is None or d.text != (r.text or ""):
            continue
        sc = {(s.start_char, s.end_char, s.label_) for s in d.spans.get("sc", [])}
        ents = {(e.start_char, e.end_char, e.label_) for e in d.ents}
        flat = {(s.start, s.end, s.label) for s in _flat_spans(r)}
        got[rid] = (sc if ents == flat else sc & ents, False)  # doc.ents must hold every flat span, doc.spans all of them
    return _tally(records, got)


def _check_hf(records: list[Record], p: Path) -> dict[str, Any]:
    ds = read_hf(p)
    parts = list(ds.values()) if hasattr(ds, "keys") else [ds]
    sizes = {k: len(v) for k, v in ds.items()} if hasattr(ds, "keys") else {}
    by_id = {r.id: r for r in records}
    got = {}
    for part in parts:
        names = part.features["ner_tags"].feature.names
        for row in part:
            r = by_id.get(row["id"])
            if r is None or row["text"] != (r.text or ""):
                continue
            spans = {(s["start"], s["end"], s["label"]) for s in row["spans"]}
            tagged = bio_spans(row["text"], row["tokens"], [names[i] for i in row["ner_tags"]]) or set()
            flat = {(s.start, s.end, s.label) for s in _flat_spans(r)}
            got[row["id"]] = (spans if flat <= tagged else spans & tagged, False)
    out = _tally(records, got)
    if sizes:
        out["splits"] = sizes
    return out


_CHECKERS = {"jsonl": _check_jsonl, "conll": _check_conll, "brat": _check_brat, "spacy": _check_spacy, "hf": _check_hf}


def read_conll_meta(path: str | Path) -> list[dict[str, Any]]:
    """The side file of a CoNLL export (``records.conll.meta.jsonl``): id, labels, spans, relations per document."""
    m = Path(str(path) + ".meta.jsonl")
    if not m.exists():
        return []
    return [json.loads(line) for line in m.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_conll(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """{id: [(token, tag)]} of a CoNLL export (ids from the side file; ``doc-<n>`` without one)."""
    meta = read_conll_meta(path)
    docs: list[list[tuple[str, str]]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() == DOCSTART:
            docs.append([])
        elif line.strip():
            cols = line.split()
            if not docs:
                docs.append([])
            docs[-1].append((cols[0], cols[-1]))
    return {(meta[i]["id"] if i < len(meta) else f"doc-{i}"): d for i, d in enumerate(docs)}


class BratDoc(NamedTuple):
    text: str
    spans: list[Span]
    relations: list[Relation]


def read_brat_docs(folder: str | Path) -> dict[str, BratDoc]:
    """Read a BRAT folder: text, T spans and R relations (relations re-indexed to the span list)."""
    folder = Path(folder)
    out = {}
    for t in sorted(folder.glob("*.txt")):
        text = t.read_text(encoding="utf-8")
        spans: list[Span] = []
        tid: dict[str, int] = {}
        rels: list[tuple[str, str, str]] = []
        ann = t.with_suffix(".ann")
        for no, line in enumerate(ann.read_text(encoding="utf-8").splitlines() if ann.exists() else [], 1):
            try:
                if line.startswith("T"):
                    key, mid, stext = line.split("\t")
                    lab, a, b = mid.split(" ")
                    tid[key] = len(spans)
                    spans.append(Span(start=int(a), end=int(b), label=lab, text=stext))
                elif line.startswith("R"):
                    _, mid = line.split("\t")[:2]
                    lab, a1, a2 = mid.split(" ")
                    rels.append((lab, a1.split(":", 1)[1], a2.split(":", 1)[1]))
            except ValueError:
                raise DataFormatError(f"{ann}: line {no} is not a BRAT T/R annotation") from None
        relations = [Relation(head=tid[h], tail=tid[tl], label=lab) for lab, h, tl in rels if h in tid and tl in tid]
        out[t.stem] = BratDoc(text, spans, relations)
    return out


def read_brat(folder: str | Path) -> dict[str, tuple[str, list[Span]]]:
    """Read a BRAT folder as {id: (text, spans)} (see :func:`read_brat_docs` for relations)."""
    return {k: (d.text, d.spans) for k, d in read_brat_docs(folder).items()}


def read_conll_relations(path: str | Path) -> dict[str, list[tuple[str, tuple[int, int, str], tuple[int, int, str]]]]:
    """Relations of a CoNLL export (from its side file): {id: [(label, (start, end, head label), (start, end, tail label))]}."""
    return {m["id"]: [(lab, tuple(h), tuple(t)) for lab, h, t in m["relations"]] for m in read_conll_meta(path)}


def read_spacy(path: str | Path) -> list[tuple[str, str, list[tuple[int, int, str]], dict[str, float]]]:
    """(id, text, entity spans, cats) per document (``doc.user_data`` also holds all spans and the relations)."""
    return [(d.user_data.get("id"), d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents], dict(d.cats)) for d in read_spacy_docs(path)]


def read_spacy_docs(path: str | Path) -> list[Any]:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def read_hf(path: str | Path) -> Any:
    from datasets import load_from_disk

    return load_from_disk(str(path))
