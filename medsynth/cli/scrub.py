"""``medsynth scrub``: de-identify notes from JSONL, CSV or a folder of .txt files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["scrub_cmd", "read_notes"]

MAX_CHARS = 2_000_000


def read_notes(path: Path, text_column: str = "text", skip_bad_lines: bool = False) -> tuple[list[dict], list[str], int]:
    """Read notes as dicts with ``id`` and ``text`` (plus their other fields). Returns (notes, warnings, skipped):
    ``skipped`` counts the input records not read. Messages name files, line and row numbers, never text or ids
    (an id can be an MRN). Every problem of a file is reported at once."""
    from ..exceptions import DataFormatError

    warnings: list[str] = []
    notes: list[dict] = []
    skipped = 0
    where: list[str] = []  # per note: where it came from (line/row/file), for messages
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataFormatError(f"{path}: no .txt files in this folder. Give a folder of .txt notes, a .jsonl or a .csv file.")
        bad = []
        for f in files:
            try:
                notes.append({"id": f.stem, "text": f.read_text(encoding="utf-8-sig")})
                where.append(f.name)
            except UnicodeDecodeError:
                bad.append(f.name)
        if bad and not skip_bad_lines:
            raise DataFormatError(f"{path}: {len(bad)} file(s) not valid UTF-8: {', '.join(bad[:20])}{' …' if len(bad) > 20 else ''}. "
                                  "Re-encode them (e.g. iconv -f latin1 -t utf-8) or pass --skip-bad-lines.")
        warnings += [f"{b}: skipped (not UTF-8)" for b in bad]
        skipped += len(bad)
    elif path.suffix.lower() == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise DataFormatError(f"{path}: not valid UTF-8. Re-encode the file as UTF-8.") from None
        except pd.errors.EmptyDataError:
            raise DataFormatError(f"{path}: empty file (no header row). Give a CSV with a header and a '{text_column}' column.") from None
        except (pd.errors.ParserError, ValueError) as e:
            raise DataFormatError(f"{path}: not a readable CSV ({type(e).__name__}). Check quoting and that every row has as many "
                                  "fields as the header.") from None
        if text_column not in df.columns:
            cols = ", ".join(map(str, df.columns[:30]))
            raise DataFormatError(f"{path}: no column '{text_column}'. Columns: {cols}. Use --text-column.")
        if df.columns.duplicated().any():
            raise DataFormatError(f"{path}: duplicate column names. Give every column a unique header.")
        for i, row in enumerate(df.to_dict(orient="records")):
            row.setdefault("id", str(i))
            row["text"] = row.pop(text_column)
            notes.append(row)
            where.append(f"row {i + 1}")
    else:
        from ..data.io import read_jsonl_dicts

        bad: list[int] = []
        no_text: list[int] = []
        rows = list(read_jsonl_dicts(path, skip_bad=True, bad_lines=bad))
        for no, obj in rows:
            if not isinstance(obj.get("text"), str):
                no_text.append(no)
                continue
            obj["id"] = str(obj["id"]) if "id" in obj and obj["id"] is not None else str(no)
            notes.append(obj)
            where.append(f"line {no}")
        if (bad or no_text) and not skip_bad_lines:
            parts = []
            if bad:
                parts.append(f"{len(bad)} malformed JSON line(s) at line(s) {_lines(bad)}")
            if no_text:
                parts.append(f"{len(no_text)} line(s) without a string field 'text' at line(s) {_lines(no_text)}")
            raise DataFormatError(f"{path}: {'; '.join(parts)}. Each line must be a JSON object {{\"id\": ..., \"text\": ...}}. "
                                  "Fix them, or pass --skip-bad-lines to process the rest.")
        if bad:
            warnings.append(f"{path}: {len(bad)} malformed line(s) skipped at line(s) {_lines(bad)}")
        warnings += [f"{path}:{no}: no string field 'text' (skipped)" for no in no_text]
        skipped += len(bad) + len(no_text)
    empty = [w for n, w in zip(notes, where, strict=True) if not n["text"].strip()]
    if empty:
        warnings.append(f"{len(empty)} note(s) with empty text, written unchanged ({', '.join(empty[:20])}{' …' if len(empty) > 20 else ''})")
    big = [w for n, w in zip(notes, where, strict=True) if len(n["text"]) > MAX_CHARS]
    if big:
        raise DataFormatError(f"{path}: {len(big)} note(s) over the {MAX_CHARS:,}-character limit ({', '.join(big[:20])}). Split the document(s).")
    return notes, warnings, skipped


def _lines(nos: list[int]) -> str:
    return ", ".join(map(str, nos[:20])) + (" …" if len(nos) > 20 else "")


def scrub_cmd(in_: Annotated[Path, typer.Option("--in", help="notes: .jsonl ({id, text, ...}), .csv, or a folder of .txt")],
              out: Annotated[Path, typer.Option("--out", help="output .jsonl (never the input file)")],
              format_: Annotated[str, typer.Option("--format", help="spans | masked | surrogate")] = "masked",
              text_column: Annotated[str, typer.Option("--text-column")] = "text",
              group_by: Annotated[str | None, typer.Option("--group-by", help="field naming the patient (consistent surrogates, date shift)")] = None,
              keep_fields: Annotated[list[str] | None, typer.Option("--keep-fields", help="other fields written unchanged (you assert they hold no PHI); comma-separated or repeated")] = None,
              scrub_fields: Annotated[list[str] | None, typer.Option("--scrub-fields", help="other fields of free text, de-identified like the text")] = None,
              hash_ids: Annotated[bool, typer.Option("--hash-ids", help="replace ids by keyed hashes (when ids are MRNs or accession numbers)")] = False,
              seed: Annotated[int, typer.Option("--seed")] = 0,
              skip_bad_lines: Annotated[bool, typer.Option("--skip-bad-lines", help="process the rest when some input lines are malformed")] = False,
              policy: Annotated[Path | None, typer.Option("--policy", help="privacy policy (its `scrub:` section; default privacy/policy.yaml)")] = None,
              tagger: Annotated[str | None, typer.Option("--tagger", help="required | optional | off (default: the policy's)")] = None,
              tagger_threshold: Annotated[float | None, typer.Option("--tagger-threshold", min=0.01, max=0.99, help="the learned tagger's operating point (default: the policy's, else the artifact's)")] = None) -> None:
    """De-identify clinical notes offline (Presidio + clinical recognizers). Every field besides id and text is dropped
    unless named in --keep-fields or --scrub-fields: nothing passes through unscrubbed."""
    from rich.console import Console

    from ..exceptions import DataFormatError
    from ..paths import same_file
    from ..scrub.engine import Scrubber
    from ..scrub.fields import FieldPolicy, apply_field_policy, hashed_id, looks_non_english

    err = Console(stderr=True)
    if format_ not in ("spans", "masked", "surrogate"):
        raise typer.BadParameter("use spans, masked or surrogate", param_hint="--format")
    if tagger is not None and tagger not in ("required", "optional", "off"):
        raise typer.BadParameter("use required, optional or off", param_hint="--tagger")
    try:
        fpolicy = FieldPolicy.of(keep_fields, scrub_fields)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--keep-fields/--scrub-fields") from None
    if not in_.exists():
        raise DataFormatError(f"{in_}: not found.")
    if out.suffix.lower() not in (".jsonl", ".ndjson"):
        raise typer.BadParameter(f"the output is JSON lines: name it *.jsonl (got '{out.name}')", param_hint="--out")
    if out.exists() and same_file(in_, out):
        raise typer.BadParameter(f"{out} is the input itself; write the de-identified notes to another file", param_hint="--out")
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; give a file name such as {out / 'scrubbed.jsonl'}", param_hint="--out")
    notes, warnings, skipped = read_notes(in_, text_column, skip_bad_lines)
    for w in warnings:
        err.print(f"[yellow]warning[/] {w}", markup=True, highlight=False)
    mode = {"spans": "spans", "masked": "mask", "surrogate": "surrogate"}[format_]
    from ..audit.policy import load_policy

    sp = load_policy(policy).scrub
    scr = Scrubber(mode=mode, seed=seed, tagger=tagger or sp.tagger, tagger_threshold=tagger_threshold or sp.tagger_threshold,
                   tagger_veto=sp.tagger_veto, vocabulary_guard=sp.vocabulary_guard)  # type: ignore[arg-type]
    if scr.tagger_status != "used":
        err.print(f"[yellow]warning[/] learned PHI tagger {scr.tagger_status}: lower recall on notes unlike the rules' own test templates", highlight=False)
    texts = [n["text"] for n in notes]
    groups = [str(n.get(group_by)) if group_by else str(n["id"]) for n in notes]
    results = []
    for i in range(0, len(texts), 64):
        results += scr.scrub_many(texts[i : i + 64], groups[i : i + 64])
    foreign = [i for i, t in enumerate(texts) if looks_non_english(t)]
    if foreign:
        err.print(f"[yellow]warning[/] {len(foreign)} note(s) do not look like English (note #{', #'.join(str(i + 1) for i in foreign[:20])}"
                  f"{' …' if len(foreign) > 20 else ''}): the recognizers and the tagger are built for English; review them by hand", highlight=False)
    extra = [{k: v for k, v in n.items() if k not in ("id", "text")} for n in notes]
    fields = apply_field_policy(extra, groups, scr, fpolicy)  # the same scrubber: surrogates consistent with the text
    out.parent.mkdir(parents=True, exist_ok=True)
    n_spans = 0
    tmp = out.with_name(f".{out.name}.partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        for n, r, f in zip(notes, results, fields.fields, strict=True):
            n_spans += len(r.spans)
            rid = hashed_id(n["id"], seed) if hash_ids else n["id"]
            if mode == "spans":
                fh.write(json.dumps({"id": rid, "spans": [{"start": s.start, "end": s.end, "label": s.label} for s in r.spans]}) + "\n")
            else:
                fh.write(json.dumps({"id": rid, "text": r.text, **f}) + "\n")
    tmp.replace(out)
    if fields.dropped:
        err.print(f"[yellow]warning[/] dropped field(s) not named in --keep-fields or --scrub-fields: "
                  f"{', '.join(f'{k} ({v} notes)' for k, v in sorted(fields.dropped.items()))}", markup=True, highlight=False)
    scrubbed_f = f", {sum(fields.phi_spans.values())} more in --scrub-fields" if fpolicy.scrub else ""
    err.print(f"scrubbed {len(notes)} notes ({n_spans} PHI spans{scrubbed_f}; {skipped} input record(s) skipped) → {out}", highlight=False)
