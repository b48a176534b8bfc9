"""Exports of labelled text records to the formats NER/RE tools read, with readers for round-trip checks.

- ``jsonl``: medsynth records (the contract in docs/architecture.md)
- ``conll``: token per line, BIO tags, blank line between documents, ``# id = ...`` comments
- ``brat``: standoff ``<id>.txt`` + ``<id>.ann`` (T spans, R relations), plus ``annotation.conf``
- ``spacy``: a ``DocBin`` (``.spacy``) with entity spans and ``doc.cats`` for document labels
- ``hf``: a Hugging Face ``datasets`` folder (``save_to_disk``) with text, tokens, BIO tags, spans, labels

Only records whose spans all verify (``text[start:end] == span.text``) and do not overlap are exported; others
raise, because an invalid span must never reach an export.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..data.records import Record, Span, invalid_spans
from ..exceptions import DataFormatError

__all__ = ["export_records", "to_bio", "read_conll", "read_brat", "read_spacy", "read_hf", "FORMATS"]

FORMATS = ("jsonl", "conll", "brat", "spacy", "hf")


def _tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\w+(?:[-'/]\w+)*|[^\w\s]", text)]


def _check(records: list[Record]) -> None:
    for r in records:
        if invalid_spans(r):
            raise DataFormatError(f"record {r.id}: {len(invalid_spans(r))} span(s) do not match their text; refusing to export.")


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
                    for tok, tag in to_bio(r):
                        fh.write(f"{tok}\t{tag}\n")
                    fh.write("\n")
        elif fmt == "brat":
            p = out_dir / "brat"
            p.mkdir(exist_ok=True)
            labels = sorted({s.label for r in records for s in r.spans})
            rels = sorted({x.label for r in records for x in r.relations})
            (p / "annotation.conf").write_text("[entities]\n" + "\n".join(labels) + "\n[relations]\n" + "\n".join(f"{x}\tArg1:<ENTITY>, Arg2:<ENTITY>" for x in rels) + "\n[events]\n[attributes]\n", encoding="utf-8")
            for r in records:
                (p / f"{r.id}.txt").write_text(r.text or "", encoding="utf-8")
                lines = [f"T{i + 1}\t{s.label} {s.start} {s.end}\t{s.text}" for i, s in enumerate(r.spans)]
                lines += [f"R{i + 1}\t{x.label} Arg1:T{x.head + 1} Arg2:T{x.tail + 1}" for i, x in enumerate(r.relations)]
                lines += [f"#{i + 1}\tAnnotatorNotes T1\tdoc_label={lab}" for i, lab in enumerate(r.labels)] if r.spans else []
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
                doc.cats = {lab: float(lab in r.labels) for lab in all_labels}
                doc.user_data["id"] = r.id
                db.add(doc)
            p = out_dir / "records.spacy"
            db.to_disk(p)
        else:  # hf
            from datasets import Dataset

            rows: dict[str, list[Any]] = {"id": [], "text": [], "tokens": [], "ner_tags": [], "labels": [], "spans": []}
            for r in records:
                bio = to_bio(r)
                rows["id"].append(r.id)
                rows["text"].append(r.text or "")
                rows["tokens"].append([t for t, _ in bio])
                rows["ner_tags"].append([g for _, g in bio])
                rows["labels"].append(list(r.labels))
                rows["spans"].append([{"start": s.start, "end": s.end, "label": s.label, "text": s.text} for s in r.spans])
            p = out_dir / "hf_dataset"
            Dataset.from_dict(rows).save_to_disk(str(p))
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


def read_brat(folder: str | Path) -> dict[str, tuple[str, list[Span]]]:
    folder = Path(folder)
    out = {}
    for t in sorted(folder.glob("*.txt")):
        text = t.read_text(encoding="utf-8")
        spans = []
        ann = t.with_suffix(".ann")
        for line in ann.read_text(encoding="utf-8").splitlines() if ann.exists() else []:
            if line.startswith("T"):
                _, mid, stext = line.split("\t")
                lab, a, b = mid.split(" ")
                spans.append(Span(start=int(a), end=int(b), label=lab, text=stext))
        out[t.stem] = (text, spans)
    return out


def read_spacy(path: str | Path) -> list[tuple[str, str, list[tuple[int, int, str]], dict[str, float]]]:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    return [(d.user_data.get("id"), d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents], dict(d.cats)) for d in DocBin().from_disk(path).get_docs(nlp.vocab)]


def read_hf(path: str | Path) -> Any:
    from datasets import load_from_disk

    return load_from_disk(str(path))
