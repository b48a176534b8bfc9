"""Exports of labelled text records to the formats NER/RE tools read, with readers for round-trip checks.

- ``jsonl``: medsynth records (the contract in docs/architecture.md), spans and relations included
- ``conll``: token per line, BIO tags, blank line between documents, ``# id = ...``, ``# labels = ...`` and
  ``# relation = <label> <head span> <tail span>`` comments (spans as ``start-end:LABEL``)
- ``brat``: standoff ``<id>.txt`` + ``<id>.ann`` (T spans, R relations with their argument types declared in
  ``annotation.conf``), document labels in ``doc_labels.json``
- ``spacy``: a ``DocBin`` (``.spacy``) with entity spans, ``doc.cats`` for document labels, all spans (incl.
  overlapping ones) in ``doc.spans["sc"]`` and relations in ``doc.user_data["relations"]``
- ``hf``: a Hugging Face ``datasets`` folder (``save_to_disk``) with text, tokens, BIO tags, spans, relations, labels

Only records whose spans all verify (``text[start:end] == span.text``) are exported; otherwise export raises,
because an invalid span must never reach an export. Flat formats (BIO, ``doc.ents``) keep the longest of
overlapping spans; the full span list is in the JSONL, BRAT, spaCy ``doc.spans`` and HF outputs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

from ..data.records import Record, Relation, Span, invalid_spans, id_ref
from ..exceptions import DataFormatError

__all__ = ["export_records", "to_bio", "read_conll", "read_conll_relations", "read_brat", "read_brat_docs", "read_spacy", "read_spacy_docs", "read_hf", "FORMATS", "BratDoc"]

FORMATS = ("jsonl", "conll", "brat", "spacy", "hf")


def _tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\w+(?:[-'/]\w+)*|[^\w\s]", text)]


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


def to_bio(r: Record) -> list[tuple[str, str]]:
    text = r.text or ""
    spans = _flat_spans(r)
    out = []
    for a, b in _tokens(text):
        tag = "O"
        for s in spans:
            if a >= s.start and b <= s.end:
                tag = ("B-" if a == s.start else "I-") + s.label
                break
        out.append((text[a:b], tag))
    return out


def export_records(records: list[Record], out_dir: str | Path, formats: list[str]) -> dict[str, Path]:
    _check(records)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for fmt in formats:
        if fmt not in FORMATS:
            raise DataFormatError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}")
        if fmt == "jsonl":
            p = out_dir / "records.jsonl"
            p.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
        elif fmt == "conll":
            p = out_dir / "records.conll"
            with open(p, "w", encoding="utf-8") as fh:
                for r in records:
                    fh.write(f"# id = {r.id}\n# labels = {'|'.join(r.labels)}\n")
                    for x in r.relations:
                        h, t = r.spans[x.head], r.spans[x.tail]
                        fh.write(f"# relation = {x.label} {h.start}-{h.end}:{h.label} {t.start}-{t.end}:{t.label}\n")
                    for tok, tag in to_bio(r):
                        fh.write(f"{tok}\t{tag}\n")
                    fh.write("\n")
        elif fmt == "brat":
            p = out_dir / "brat"
            p.mkdir(exist_ok=True)
            labels = sorted({s.label for r in records for s in r.spans})
            args: dict[str, tuple[set[str], set[str]]] = {}
            for r in records:
                for x in r.relations:
                    a = args.setdefault(x.label, (set(), set()))
                    a[0].add(r.spans[x.head].label)
                    a[1].add(r.spans[x.tail].label)
            conf = ["[entities]", *labels, "[relations]"]
            conf += [f"{x}\tArg1:{'|'.join(sorted(h))}, Arg2:{'|'.join(sorted(t))}" for x, (h, t) in sorted(args.items())]
            (p / "annotation.conf").write_text("\n".join(conf) + "\n[events]\n[attributes]\n", encoding="utf-8")
            for r in records:
                _safe_id(r.id)
                (p / f"{r.id}.txt").write_text(r.text or "", encoding="utf-8")
                lines = [f"T{i + 1}\t{s.label} {s.start} {s.end}\t{s.text}" for i, s in enumerate(r.spans)]
                lines += [f"R{i + 1}\t{x.label} Arg1:T{x.head + 1} Arg2:T{x.tail + 1}" for i, x in enumerate(r.relations)]
                (p / f"{r.id}.ann").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
            (p / "doc_labels.json").write_text(json.dumps({r.id: r.labels for r in records}), encoding="utf-8")
        elif fmt == "spacy":
            import spacy
            from spacy.tokens import DocBin

            nlp = spacy.blank("en")
            db = DocBin(store_user_data=True)
            all_labels = sorted({lab for r in records for lab in r.labels})
            for r in records:
                doc = nlp.make_doc(r.text or "")
                ents = []
                for s in _flat_spans(r):
                    sp = doc.char_span(s.start, s.end, label=s.label, alignment_mode="expand")
                    if sp is not None and not any(sp.start < e.end and e.start < sp.end for e in ents):
                        ents.append(sp)
                doc.ents = ents
                group = [doc.char_span(s.start, s.end, label=s.label, alignment_mode="expand") for s in r.spans]
                doc.spans["sc"] = [g for g in group if g is not None]
                doc.cats = {lab: float(lab in r.labels) for lab in all_labels}
                doc.user_data["id"] = r.id
                doc.user_data["spans"] = [[s.start, s.end, s.label] for s in r.spans]
                doc.user_data["relations"] = [[x.head, x.tail, x.label] for x in r.relations]
                db.add(doc)
            p = out_dir / "records.spacy"
            db.to_disk(p)
        else:  # hf
            from datasets import Dataset

            rows: dict[str, list[Any]] = {"id": [], "text": [], "tokens": [], "ner_tags": [], "labels": [], "spans": [], "relations": []}
            for r in records:
                bio = to_bio(r)
                rows["id"].append(r.id)
                rows["text"].append(r.text or "")
                rows["tokens"].append([t for t, _ in bio])
                rows["ner_tags"].append([g for _, g in bio])
                rows["labels"].append(list(r.labels))
                rows["spans"].append([{"start": s.start, "end": s.end, "label": s.label, "text": s.text} for s in r.spans])
                rows["relations"].append([{"head": x.head, "tail": x.tail, "label": x.label} for x in r.relations])
            p = out_dir / "hf_dataset"
            from datasets import Features, Sequence, Value

            span_f = {"start": Value("int64"), "end": Value("int64"), "label": Value("string"), "text": Value("string")}
            rel_f = {"head": Value("int64"), "tail": Value("int64"), "label": Value("string")}
            feats = Features({"id": Value("string"), "text": Value("string"), "tokens": Sequence(Value("string")), "ner_tags": Sequence(Value("string")),
                              "labels": Sequence(Value("string")), "spans": [span_f], "relations": [rel_f]})
            Dataset.from_dict(rows, features=feats).save_to_disk(str(p))
        paths[fmt] = p
    return paths


def read_conll(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    cur: str | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# id = "):
            cur = line[7:]
            out[cur] = []
        elif line.startswith("#") or not line.strip():
            continue
        else:
            tok, tag = line.split("\t")
            out[cur].append((tok, tag))  # type: ignore[index]
    return out


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
    """The ``# relation = ...`` comments of a CoNLL export: {id: [(label, (start, end, head label), (start, end, tail label))]}."""
    out: dict[str, list[Any]] = {}
    cur: str | None = None

    def sp(x: str) -> tuple[int, int, str]:
        rng, lab = x.split(":", 1)
        a, b = rng.split("-")
        return int(a), int(b), lab

    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# id = "):
            cur = line[7:]
            out[cur] = []
        elif line.startswith("# relation = ") and cur is not None:
            lab, h, t = line[len("# relation = "):].split(" ")
            out[cur].append((lab, sp(h), sp(t)))
    return out


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
