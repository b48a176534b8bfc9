"""The record contract shared by every step (see docs/architecture.md).

A :class:`Record` is one text, image or table row with labels, spans, relations, provenance and scores.
Records are written as JSONL (one per line). A span is valid only if ``text[start:end] == span.text``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Span", "Relation", "Provenance", "Record", "invalid_spans", "now_iso", "id_ref"]


def id_ref(record_id: str) -> str:
    """How messages name a record: a short HMAC of its id under this machine's secret (``id#3f2a9c1b``), never the id
    itself, since ids can be MRNs or accession numbers (and a plain hash of a 7-digit MRN is reversed by trying them all).
    Find the record on the same machine with ``medsynth.data.records.id_ref(id) == "id#..."`` over your ids."""
    import hmac

    from ..paths import id_secret

    return "id#" + hmac.new(id_secret(), str(record_id).encode(), hashlib.sha256).hexdigest()[:8]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Span(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str
    text: str = ""

    @model_validator(mode="after")
    def _order(self) -> Span:
        if self.end < self.start:
            raise ValueError(f"span end {self.end} is before start {self.start}")
        return self


class Relation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    head: int = Field(ge=0, description="index into Record.spans")
    tail: int = Field(ge=0, description="index into Record.spans")
    label: str


class Provenance(BaseModel):
    model_config = ConfigDict(extra="allow")
    step: str = ""
    generator: str | None = None
    model_sha256: str | None = None
    prompt_id: str | None = None
    strategy: list[str] | str | None = None
    seed_record_ids: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=now_iso)


class Record(BaseModel):
    """One unit of data flowing between steps."""

    model_config = ConfigDict(extra="forbid")
    id: str
    kind: Literal["text", "image", "row"] = "text"
    text: str | None = None
    image_path: str | None = None
    values: dict[str, Any] | None = None
    labels: list[str] = Field(default_factory=list)
    spans: list[Span] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)
    provenance: Provenance = Field(default_factory=Provenance)
    scores: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict, description="source fields kept as-is (split, ids…)")

    @model_validator(mode="after")
    def _relations_in_range(self) -> Record:
        n = len(self.spans)
        for r in self.relations:
            if r.head >= n or r.tail >= n:
                raise ValueError(f"relation {r.label} points at span {max(r.head, r.tail)} but the record has {n} spans")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(exclude_defaults=False)

    @classmethod
    def from_json(cls, line: str) -> Record:
        return cls.model_validate_json(line)


def invalid_spans(record: Record) -> list[int]:
    """Indices of spans whose offsets do not reproduce their text (or fall outside the text)."""
    text = record.text or ""
    bad = []
    for i, s in enumerate(record.spans):
        if s.end > len(text) or text[s.start : s.end] != s.text or s.start == s.end:
            bad.append(i)
    return bad
