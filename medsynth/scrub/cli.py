"""``medsynth scrub``: de-identify notes from JSONL, CSV or a folder of .txt files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["scrub_cmd", "read_notes"]

MAX_CHARS = 2_000_000


def read_notes(path: Path, text_column: str = "text", skip_bad_lines: bool = False) -> tuple[list[dict], list[str]]:
    """Read notes as dicts with ``id`` and ``text``. Returns (notes, warnings). Never puts text in messages."""
    from ..exceptions import DataFormatError

    warnings: list[str] = []
    notes: list[dict] = []
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataFormatError(f"{path}: no .txt files in this folder.")
        for f in files:
            try:
                notes.append({"id": f.stem, "text": f.read_text(encoding="utf-8")})
            except UnicodeDecodeError:
                if not skip_bad_lines:
                    raise DataFormatError(f"{f}: not valid UTF-8. Re-encode it (e.g. iconv -f latin1 -t utf-8) or pass --skip-bad-lines.") from None
                warnings.append(f"{f.name}: skipped (not UTF-8)")
    elif path.suffix.lower() == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except UnicodeDecodeError:
            raise DataFormatError(f"{path}: not valid UTF-8. Re-encode the file as UTF-8.") from None
        if text_column not in df.columns:
            raise DataFormatError(f"{path}: no column '{text_column}'. Columns: {', '.join(df.columns)}. Use --text-column.")
        for i, row in enumerate(df.to_dict(orient="records")):
            row.setdefault("id", str(i))
            row["text"] = row.pop(text_column)
            notes.append(row)
    else:
        from ..data.io import read_jsonl_dicts

        bad: list[int] = []
        for no, obj in read_jsonl_dicts(path, skip_bad=skip_bad_lines, bad_lines=bad):
            if not isinstance(obj.get("text"), str):
                msg = f"{path}:{no}: no string field 'text'"
                if not skip_bad_lines:
                    raise DataFormatError(msg + ". Each line must be {\"id\": ..., \"text\": ...}; or pass --skip-bad-lines.")
                warnings.append(msg + " (skipped)")
                continue
            obj.setdefault("id", str(no))
            notes.append(obj)
        if bad:
            warnings.append(f"{path}: {len(bad)} malformed line(s) skipped at line(s) {', '.join(map(str, bad[:20]))}")
    empty = [str(n["id"]) for n in notes if not n["text"].strip()]
    if empty:
        warnings.append(f"{len(empty)} note(s) with empty text, written unchanged (ids: {', '.join(empty[:20])}{' …' if len(empty) > 20 else ''})")
    for n in notes:
        if len(n["text"]) > MAX_CHARS:
            raise DataFormatError(f"note id {n['id']}: {len(n['text']):,} characters, over the {MAX_CHARS:,} limit. Split the document.")
    return notes, warnings


def scrub_cmd(in_: Annotated[Path, typer.Option("--in", help="notes: .jsonl ({id, text, ...}), .csv, or a folder of .txt")],
              out: Annotated[Path, typer.Option("--out", help="output .jsonl")],
              format_: Annotated[str, typer.Option("--format", help="spans | masked | surrogate")] = "masked",
              text_column: Annotated[str, typer.Option("--text-column")] = "text",
              group_by: Annotated[str | None, typer.Option("--group-by", help="field naming the patient (consistent surrogates, date shift)")] = None,
              seed: Annotated[int, typer.Option("--seed")] = 0,
              skip_bad_lines: Annotated[bool, typer.Option("--skip-bad-lines", help="process the rest when some input lines are malformed")] = False) -> None:
    """De-identify clinical notes offline (Presidio + clinical recognizers)."""
    from rich.console import Console

    from ..exceptions import DataFormatError
    from .engine import Scrubber

    err = Console(stderr=True)
    if format_ not in ("spans", "masked", "surrogate"):
        raise typer.BadParameter("use spans, masked or surrogate", param_hint="--format")
    if not in_.exists():
        raise DataFormatError(f"{in_}: not found.")
    notes, warnings = read_notes(in_, text_column, skip_bad_lines)
    for w in warnings:
        err.print(f"[yellow]warning[/] {w}", markup=True, highlight=False)
    mode = {"spans": "spans", "masked": "mask", "surrogate": "surrogate"}[format_]
    scr = Scrubber(mode=mode, seed=seed)  # type: ignore[arg-type]
    texts = [n["text"] for n in notes]
    groups = [str(n.get(group_by)) if group_by else str(n["id"]) for n in notes]
    results = []
    for i in range(0, len(texts), 64):
        results += scr.scrub_many(texts[i : i + 64], groups[i : i + 64])
    out.parent.mkdir(parents=True, exist_ok=True)
    n_spans = 0
    with open(out, "w", encoding="utf-8") as fh:
        for n, r in zip(notes, results, strict=True):
            n_spans += len(r.spans)
            if mode == "spans":
                fh.write(json.dumps({"id": n["id"], "spans": [{"start": s.start, "end": s.end, "label": s.label} for s in r.spans]}) + "\n")
            else:
                fh.write(json.dumps({**n, "text": r.text}) + "\n")
    err.print(f"scrubbed {len(notes)} notes ({n_spans} PHI spans, {len(warnings)} skipped) → {out}")
