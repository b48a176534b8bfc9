"""Reading and writing records (JSONL). Errors name file and line, never the content."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from ..exceptions import DataFormatError
from .records import Record

__all__ = ["read_records", "iter_records", "write_records", "read_jsonl_dicts", "sha256_file", "hash_and_count_lines"]


def read_jsonl_dicts(path: str | Path, skip_bad: bool = False, bad_lines: list[int] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_no, obj)`` for each JSON object line. Bad lines raise DataFormatError naming the
    line numbers (all of them at once), unless ``skip_bad`` (then they are skipped and reported by count)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: file not found. Check the path (relative paths are resolved from the current directory).")
    bad: list[int] = []
    good: list[tuple[int, dict]] = []
    try:
        with open(path, encoding="utf-8-sig") as fh:  # a UTF-8 byte-order mark (Windows editors) is not a bad line
            for no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if not isinstance(obj, dict):
                        raise ValueError
                    good.append((no, obj))
                except ValueError:
                    bad.append(no)
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not valid UTF-8 (byte offset {e.start}). Re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`.") from None
    if bad and not skip_bad:
        shown = ", ".join(map(str, bad[:20])) + (" …" if len(bad) > 20 else "")
        raise DataFormatError(f"{path}: {len(bad)} malformed JSON line(s) at line(s) {shown}. Fix them, or pass --skip-bad-lines to process the rest.")
    if bad_lines is not None:
        bad_lines.extend(bad)
    yield from good


def iter_records(path: str | Path) -> Iterator[Record]:
    for no, obj in read_jsonl_dicts(path):
        try:
            yield Record.model_validate(obj)
        except ValidationError as e:
            fields = ", ".join(".".join(map(str, err["loc"])) + f" ({err['type']})" for err in e.errors()[:5])
            raise DataFormatError(f"{path}:{no}: not a valid medsynth record: {fields}. See docs/architecture.md for the record contract.") from None


def read_records(path: str | Path) -> list[Record]:
    return list(iter_records(path))


def write_records(records: Iterable[Record], path: str | Path) -> int:
    """Atomically write records as JSONL (write to a temp file, fsync, rename). Returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(r.to_json() + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for b in iter(lambda: fh.read(chunk), b""):
            h.update(b)
    return h.hexdigest()


def hash_and_count_lines(path: str | Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """sha256 and line count of a file in one read (a JSONL file's record count)."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        for b in iter(lambda: fh.read(chunk), b""):
            h.update(b)
            n += b.count(b"\n")
    return h.hexdigest(), n
