"""Surrogate values: realistic fake replacements, consistent within a document group (same real value → same
fake value) and, for dates, shifted by one offset per group so intervals between dates are kept."""

from __future__ import annotations

import re
from datetime import date, timedelta

__all__ = ["surrogate_value", "shift_date"]

_FIRST = ["Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Rowan", "Harper", "Emerson", "Finley", "Hayden",
          "Kendall", "Logan", "Parker", "Reese", "Sawyer", "Skyler"]
_LAST = ["Abernathy", "Brightwater", "Calloway", "Delacroix", "Ellington", "Fairbanks", "Galloway", "Hollister", "Ingram", "Jorgensen",
         "Kettering", "Lindqvist", "Marchetti", "Northcott", "Oyelaran", "Pemberton", "Quintero", "Rasmussen", "Stanhope", "Thornbury"]
_CITIES = ["Millbrook", "Cedar Falls", "Ashford", "Brookhaven", "Fairview", "Glenwood", "Harborview", "Lakewood", "Maplewood", "Riverton"]
_STREETS = ["Oak", "Maple", "Cedar", "Elm", "Willow", "Birch", "Pine", "Chestnut", "Spruce", "Aspen"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]


def _digits_like(s: str, h: int) -> str:
    out = []
    for i, ch in enumerate(s):
        if ch.isdigit():
            out.append(str((h >> (i % 60)) % 10 if i else 1 + (h % 9)))
        elif ch.isalpha():
            out.append(chr(ord("A" if ch.isupper() else "a") + (h >> (i % 50)) % 26))
        else:
            out.append(ch)
    return "".join(out)


def shift_date(text: str, days: int) -> str | None:
    """Shift a date string by ``days`` keeping its format; None if it cannot be parsed."""
    m = re.fullmatch(r"(\d{1,2})([/\-.])(\d{1,2})\2(\d{2,4})", text)
    if m:
        mo, d, y = int(m.group(1)), int(m.group(3)), int(m.group(4))
        y = y + (1900 if y > 30 else 2000) if y < 100 else y
        try:
            nd = date(y, mo, d) + timedelta(days=days)
        except ValueError:
            return None
        yy = str(nd.year) if len(m.group(4)) == 4 else f"{nd.year % 100:02d}"
        return f"{nd.month:0{len(m.group(1))}d}{m.group(2)}{nd.day:0{len(m.group(3))}d}{m.group(2)}{yy}"
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if m:
        try:
            nd = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + timedelta(days=days)
        except ValueError:
            return None
        return nd.isoformat()
    try:
        from dateutil import parser

        dt = parser.parse(text, default=None, fuzzy=False)  # type: ignore[arg-type]
    except (ValueError, OverflowError, TypeError):
        return None
    nd = dt.date() + timedelta(days=days)
    if re.search(r"\d{4}", text):
        return f"{_MONTHS[nd.month - 1]} {nd.day}, {nd.year}"
    return f"{_MONTHS[nd.month - 1]} {nd.day}"


def surrogate_value(label: str, original: str, h: int, date_shift: int) -> str:
    if label == "NAME":
        parts = original.split()
        first, last = _FIRST[h % len(_FIRST)], _LAST[(h >> 8) % len(_LAST)]
        return last if len(parts) == 1 else f"{first} {last}"
    if label == "DATE":
        return shift_date(original, date_shift) or "[DATE]"
    if label == "AGE_OVER_89":
        return "90+"
    if label in ("LOCATION",):
        return _CITIES[h % len(_CITIES)]
    if label == "HOSPITAL":
        return f"{_CITIES[h % len(_CITIES)]} General Hospital"
    if label == "ADDRESS":
        return f"{1 + h % 9899} {_STREETS[(h >> 4) % len(_STREETS)]} Street"
    if label == "ZIP":
        return "00000" if len(original) == 5 else "00000-0000"
    if label == "EMAIL":
        return f"user{h % 10000}@example.org"
    if label == "URL":
        return "https://example.org/"
    if label == "IP_ADDRESS":
        return f"192.0.2.{h % 254 + 1}"
    if label in ("PHONE", "FAX"):
        return "555-01" + f"{h % 100:02d}"[:2] if False else f"(555) 01{h % 10}-{h % 10000:04d}"
    return _digits_like(original, h)
