"""What scrubbing does with the fields a record carries besides its text.

A note rarely travels alone: a CSV row or JSONL object has ``patient_name``, ``mrn``, ``dob`` columns; a record's
``meta`` keeps whatever its source had. Nothing passes through untouched by default:

* ``keep``  — passed unchanged. The user asserts these hold no PHI (``split``, ``source``, a label column…).
* ``scrub`` — free text, de-identified like the note's text (strings and lists of strings; other values are dropped).
* every other field is **dropped**, and its values join the private PHI list that the ``phi_replay`` audit searches
  the synthetic output for (a dropped ``mrn`` must not reappear in a generated note either).

Field *names* are reported (they are column headers, not data); values never are.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FieldPolicy", "FieldOutcome", "apply_field_policy", "hashed_id", "FIELD_PHI_LABEL", "looks_non_english", "PHI_FILE", "load_phi_strings"]

#: label under which values of dropped fields are kept for the replay audit (a generic identifier)
FIELD_PHI_LABEL = "ID"


@dataclass(frozen=True)
class FieldPolicy:
    keep: frozenset[str] = frozenset()
    scrub: frozenset[str] = frozenset()

    @classmethod
    def of(cls, keep: Iterable[str] | None = None, scrub: Iterable[str] | None = None) -> FieldPolicy:
        k, s = frozenset(_split(keep)), frozenset(_split(scrub))
        both = sorted(k & s)
        if both:
            raise ValueError(f"field(s) {', '.join(both)} are both kept and scrubbed: name each field in one list only")
        return cls(k, s)


def _split(items: Iterable[str] | None) -> list[str]:
    """Accept repeated options and comma-separated lists alike."""
    return [x.strip() for it in items or [] for x in str(it).split(",") if x.strip()]


@dataclass
class FieldOutcome:
    """The fields of each record after the policy, and what happened (names and counts only)."""

    fields: list[dict[str, Any]]
    dropped: Counter[str] = field(default_factory=Counter)  # field name -> records where it was dropped
    scrubbed: Counter[str] = field(default_factory=Counter)  # field name -> records where it was scrubbed
    phi_spans: Counter[str] = field(default_factory=Counter)  # PHI label -> spans found in scrubbed fields
    phi_values: set[tuple[str, str]] = field(default_factory=set)  # (label, string) private PHI for the replay audit


def _strings(value: Any) -> list[str]:
    """The text inside a field value (a scalar, or lists/dicts of scalars), for the replay audit's PHI list."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, (str, int, float)):
        return [str(value).strip()]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def apply_field_policy(rows: list[dict[str, Any]], groups: list[str | None], scrubber: Any, policy: FieldPolicy,
                       min_phi_len: int = 3) -> FieldOutcome:
    """Apply ``policy`` to the extra fields of each record (``rows[i]``: field name -> value; without id and text),
    scrubbing the ``scrub`` fields with ``scrubber`` (a :class:`~medsynth.scrub.engine.Scrubber`, same group as the
    record's text so surrogates stay consistent)."""
    res = FieldOutcome(fields=[{} for _ in rows])
    jobs: list[tuple[int, str, int | None, str]] = []  # (row, field, list index or None, text)
    for i, row in enumerate(rows):
        for name, value in row.items():
            if name in policy.keep:
                res.fields[i][name] = value
            elif name in policy.scrub and isinstance(value, str):
                jobs.append((i, name, None, value))
                res.scrubbed[name] += 1
            elif name in policy.scrub and isinstance(value, list) and all(isinstance(v, str) for v in value):
                res.fields[i][name] = list(value)
                jobs += [(i, name, j, v) for j, v in enumerate(value)]
                res.scrubbed[name] += 1
            else:
                res.dropped[name] += 1
                res.phi_values.update((FIELD_PHI_LABEL, s) for s in _strings(value) if len(s) >= min_phi_len)
    if jobs:
        out = scrubber.scrub_many([t for *_, t in jobs], [groups[i] for i, *_ in jobs])
        for (i, name, j, _), r in zip(jobs, out, strict=True):
            if j is None:
                res.fields[i][name] = r.text
            else:
                res.fields[i][name][j] = r.text
            for s in r.spans:
                res.phi_spans[s.label] += 1
                if len(s.text) >= min_phi_len:
                    res.phi_values.add((s.label, s.text))
    return res


def hashed_id(record_id: str, key: str | int) -> str:
    """A stable pseudonymous id: HMAC-SHA256 of the id under this machine's secret (``$MEDSYNTH_HOME/keys/id_hash.key``,
    32 random bytes made on first use, mode 0600) and ``key`` (the seed), 16 hex digits. Without the secret the ids
    cannot be recovered by hashing every possible MRN; with it (and the seed) the same id always maps to the same value."""
    import hmac

    from ..paths import id_secret

    return "h" + hmac.new(id_secret(), f"{key}|{record_id}".encode(), hashlib.sha256).hexdigest()[:16]


_EN_STOP = frozenset("the a an and or of to in on at for with without is was are were be been has have had no not this that his her he she "
                     "patient pt by from as but if then there it its which who will would should can may per".split())


def looks_non_english(text: str) -> bool:
    """True for a note that is probably not English: mostly non-Latin letters, or (20+ words) almost none of the
    commonest English function words. The scrubber's recognizers, NER and tagger are built for English, so such notes
    are *reported* (by position, never content) for review, not silently trusted."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return False
    if sum(1 for ch in letters if ord(ch) > 0x24F) > 0.3 * len(letters):
        return True
    words = [w.lower() for w in text.split() if w.isalpha()]
    en, other = sum(w in _EN_STOP for w in words), sum(w in _OTHER_STOP for w in words)
    if len(words) >= 8 and other >= 3 and other > 1.5 * en:
        return True  # French, German, Spanish, Italian, Portuguese, Dutch function words outnumber English ones
    return len(words) >= 20 and en < 0.04 * len(words)


#: frequent function words of other languages written in Latin script (none of them an English word)
_OTHER_STOP = frozenset("le la les des du une et est pour par sur avec dans sans il elle qui que pas plus depuis "  # fr
                        "der die das und ist nicht mit für auf ein eine dem den des von zu bei nach seit wurde "  # de
                        "el los las del y es por con sin una unos para que se su fue desde "  # es
                        "il lo gli della delle di e è per con senza una che non nel sono "  # it
                        "o os da do das dos em um uma com sem não foi pelo pela "  # pt
                        "de het een en van met niet voor op bij werd zijn".split()) - _EN_STOP


#: the file of a scrub step's folder listing the PHI strings it found (private run-dir data, for the replay audit)
PHI_FILE = "phi_strings.jsonl"


def load_phi_strings(step_dir: str | Path, with_labels: bool = False) -> list[Any]:
    """PHI strings found by a scrub step (private run-dir data; used by the PHI-replay audit); with
    ``with_labels=True`` the entries are ``{"label", "text"}``."""
    p = Path(step_dir) / PHI_FILE
    if not p.exists():
        return []
    rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows if with_labels else [r["text"] for r in rows]
