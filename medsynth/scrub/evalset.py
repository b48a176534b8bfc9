"""A labelled PHI evaluation set: synthetic clinical notes with gold character offsets for every HIPAA Safe Harbor
identifier type that occurs in free text, plus hard negatives (times, durations, vitals, doses, scores, eponyms,
lab and drug names).

Notes are assembled from sentence templates with typed slots; the offsets of every filled slot are recorded, so
gold spans are exact by construction. Templates are split in two disjoint halves: ``split="validation"`` (used to
tune the recognizers) and ``split="test"`` (held-out templates and a different seed; the reported figures).

What makes it harder than a form letter (each applied with the same probability in both splits, every transform
length-preserving or applied at slot level so the offsets stay exact):

- header blocks with one field per line, aligned with runs of spaces, some written ``LAST, FIRST`` and in capitals;
- whole sentences in capitals (``PT SEEN BY DR KHAN``), dictation style lower-case section labels;
- names in free text without a title (family members, clinicians by surname only, ``d/w Okafor``), initials;
- line wrapping at 60–80 columns (a space becomes a newline, so a name can be split over two lines);
- OCR-like noise in the surrounding words (``c``/``e``, ``l``/``1``, ``rn``/``m`` confusions, doubled spaces) and
  in identifiers (``O`` for ``0``, a space inside a long number);
- hard negatives that look like PHI to a generic recogniser: eponyms (also in capitals and possessive), drug and
  lab names, scores, vitals, times written ``0930`` / ``2300h``, durations, dose schedules.

Everything here is invented; no real person is described.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

__all__ = ["EvalNote", "make_eval_set", "PHI_TYPES", "TEMPLATES_A", "TEMPLATES_B"]

FIRST = ["John", "Maria", "Wei", "Fatima", "Olga", "Carlos", "Aisha", "Liam", "Priya", "Tomasz", "Grace", "Mohammed", "Elena", "Kenji",
         "Sarah", "David", "Amara", "Lucas", "Ingrid", "Rafael", "Mei", "Dmitri", "Nia", "Henrik", "Lucia", "Omar", "Yuki", "Bogdan"]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Ivanova", "Mendoza", "Khan", "O'Brien", "Patel", "Nowak", "Kim", "Haddad", "Rossi", "Tanaka",
        "Johnson", "Williams", "Mensah", "Silva", "Lindqvist", "Abernathy", "Kowalczyk", "Nguyen", "Delacroix", "Oyelaran", "Fitzgerald",
        "Van der Berg", "MacAllister", "Papadopoulos"]
CITIES = [("Springfield", "IL"), ("Columbus", "OH"), ("Fresno", "CA"), ("Tacoma", "WA"), ("Albany", "NY"), ("Austin", "TX"), ("Denver", "CO"),
          ("Raleigh", "NC"), ("Dayton", "OH"), ("Boise", "ID"), ("Eugene", "OR"), ("Macon", "GA")]
STREETS = ["Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane", "Elm Road", "Pine Court", "Washington Boulevard", "Lakeview Terrace",
           "N. Harbor Rd", "Old Mill Way", "Sycamore St", "W 5th Ave"]
HOSPITALS = ["St. Mary's Hospital", "Riverside Medical Center", "Mercy General Hospital", "Northwest Clinic", "Lakeside Health Center",
             "Good Samaritan Hospital", "Valley View Medical Center", "Saint Luke's Hospital", "Cedar Ridge Rehabilitation Center",
             "Franklin County Memorial Hospital"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
PHI_TYPES = ["NAME", "DATE", "AGE_OVER_89", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "HEALTH_PLAN", "ACCOUNT", "LICENSE", "VEHICLE_ID",
             "DEVICE_ID", "URL", "IP_ADDRESS", "ADDRESS", "ZIP", "LOCATION", "HOSPITAL"]
_NAME_KINDS = {"NAME", "FULLNAME", "FIRST", "LAST", "LASTFIRST", "INITIAL"}


@dataclass
class EvalNote:
    id: str
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # gold PHI
    negatives: list[tuple[int, int, str]] = field(default_factory=list)  # clinical non-PHI expressions


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1990, 2024), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{y}-{m:02d}-{d:02d}", f"{MONTHS[m - 1]} {d}, {y}",
                       f"{d} {MONTHS[m - 1][:3]} {y}", f"{MONTHS[m - 1]} {y}", f"{MONTHS[m - 1][:3]}. {d}, {y}", f"{m:02d}-{d:02d}-{y}",
                       f"{d:02d}-{MONTHS[m - 1][:3].upper()}-{y}", f"{MONTHS[m - 1]} {d}th"])


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


class _Pools:
    """Name, place and hospital vocabularies: validation and test draw from disjoint halves, so recognizers tuned
    on validation cannot have memorised the test names."""

    def __init__(self, split: str):
        k = 0 if split == "validation" else 1
        self.first, self.last = FIRST[k::2], LAST[k::2]
        self.cities, self.streets, self.hospitals = CITIES[k::2], STREETS[k::2], HOSPITALS[k::2]


_POOLS: _Pools = _Pools("test")


def _slot(kind: str, rng: random.Random) -> str:
    FIRST, LAST, CITIES, STREETS, HOSPITALS = _POOLS.first, _POOLS.last, _POOLS.cities, _POOLS.streets, _POOLS.hospitals  # noqa: N806
    if kind == "NAME":
        return rng.choice([f"{rng.choice(FIRST)} {rng.choice(LAST)}", rng.choice(LAST)])
    if kind == "FULLNAME":
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if kind == "FIRST":
        return rng.choice(FIRST)
    if kind == "LAST":
        return rng.choice(LAST)
    if kind == "LASTFIRST":
        return f"{rng.choice(LAST)}, {rng.choice(FIRST)}"
    if kind == "INITIAL":
        return f"{rng.choice(FIRST)[0]}. {rng.choice(LAST)}"
    if kind == "DATE":
        return _date(rng)
    if kind == "AGE_OVER_89":
        return str(rng.randint(90, 104))
    if kind in ("PHONE", "FAX"):
        a, b, c = rng.randint(200, 989), rng.randint(200, 989), rng.randint(0, 9999)
        return rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}", f"{a} {b} {c:04d}", f"+1 {a}-{b}-{c:04d}"])
    if kind == "EMAIL":
        return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower().replace(chr(39), '').replace(' ', '')}{rng.randint(1, 99)}@{rng.choice(['mail.com', 'example.net', 'hospital.org'])}"
    if kind == "SSN":
        return f"{_digits(rng, 3)}-{_digits(rng, 2)}-{_digits(rng, 4)}"
    if kind == "MRN":
        return rng.choice([_digits(rng, 8), f"MR{_digits(rng, 7)}", f"{_digits(rng, 3)}-{_digits(rng, 4)}", _digits(rng, 10), f"{_digits(rng, 2)}-{_digits(rng, 2)}-{_digits(rng, 4)}"])
    if kind == "HEALTH_PLAN":
        return f"{rng.choice(['XEH', 'BCB', 'UHC', 'AET', 'W'])}{_digits(rng, 9)}"
    if kind == "ACCOUNT":
        return _digits(rng, rng.randint(7, 11))
    if kind == "LICENSE":
        return f"{rng.choice(['A', 'B', 'MD', 'RN', 'C'])}{_digits(rng, 7)}"
    if kind == "VEHICLE_ID":
        return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
    if kind == "DEVICE_ID":
        return rng.choice([f"{rng.choice(['PM', 'SN', 'ICD'])}{_digits(rng, 6)}-{rng.choice('ABCDEFGH')}{_digits(rng, 2)}", f"{rng.choice('ABCDEFGHJK')}{rng.choice('ABCDEFGHJK')}{_digits(rng, 8)}"])
    if kind == "URL":
        return f"https://portal.{rng.choice(['mercyhealth', 'riverside-mc', 'stmarys'])}.org/patient/{_digits(rng, 6)}"
    if kind == "IP_ADDRESS":
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind == "ADDRESS":
        return rng.choice([f"{rng.randint(1, 9999)} {rng.choice(STREETS)}", f"{rng.randint(1, 9999)} {rng.choice(STREETS)}, Apt {rng.randint(1, 40)}"])
    if kind == "ZIP":
        return _digits(rng, 5)
    if kind == "LOCATION":
        return rng.choice(CITIES)[0]
    if kind == "STATE":
        return rng.choice(CITIES)[1]
    if kind == "HOSPITAL":
        return rng.choice(HOSPITALS)
    # hard negatives
    if kind == "TIME":
        return rng.choice([f"{rng.randint(0, 23):02d}:{rng.choice(['00', '15', '30', '45'])}", f"{rng.randint(1, 12)} pm", f"{rng.randint(1, 11)}:30 am",
                           f"{rng.randint(0, 23):02d}{rng.choice(['00', '15', '30', '45'])}", f"{rng.randint(10, 23)}00h"])
    if kind == "DURATION":
        return rng.choice([f"{rng.randint(2, 14)} days", f"{rng.randint(1, 6)} weeks", f"{rng.randint(2, 48)} hours", "3 months", f"x{rng.randint(2, 5)} days",
                           f"{rng.randint(2, 10)}-day", "overnight"])
    if kind == "VITALS":
        return rng.choice([f"BP {rng.randint(95, 170)}/{rng.randint(55, 100)}", f"HR {rng.randint(50, 120)}", f"SpO2 {rng.randint(88, 100)}%",
                           f"temperature {rng.randint(36, 39)}.{rng.randint(0, 9)} C", f"RR {rng.randint(12, 28)}", f"T {rng.randint(97, 103)}.{rng.randint(0, 9)}F",
                           f"O2 sat {rng.randint(88, 99)}% on {rng.randint(1, 6)}L"])
    if kind == "DOSE":
        return rng.choice(["metoprolol 25 mg twice daily", "furosemide 40 mg IV", "heparin 5000 units", "aspirin 81 mg", "vancomycin 1 g q12h",
                           "Lasix 20 mg PO", "Coumadin 5 mg qHS", "enoxaparin 1 mg/kg", "Zosyn 4.5 g q6h", "Tylenol 650 mg q4h PRN"])
    if kind == "SCORE":
        return rng.choice([f"GCS {rng.randint(8, 15)}", f"Gleason 3+{rng.randint(3, 4)}", f"APGAR {rng.randint(7, 9)}", f"pain score {rng.randint(0, 10)}/10",
                           f"NIHSS {rng.randint(0, 20)}", f"CURB-65 score {rng.randint(0, 4)}", f"Wells score {rng.randint(0, 6)}", f"MMSE {rng.randint(18, 30)}/30"])
    if kind == "EPONYM":
        return rng.choice(["Foley catheter", "Parkinson disease", "Swan-Ganz catheter", "Crohn disease", "Hodgkin lymphoma", "Babinski sign",
                           "Glasgow Coma Scale", "Kerley B lines", "Cushing syndrome", "FOLEY CATHETER", "Parkinson's disease", "Bell's palsy",
                           "Graves disease", "Barrett esophagus", "Jackson-Pratt drain", "Hickman line", "Wilson disease", "Alzheimer dementia"])
    if kind == "LAB":
        return rng.choice(["CBC with diff", "Chem-7", "troponin I", "BNP", "INR 1.2", "HbA1c 7.1%", "lactate 2.4", "creatinine 1.3", "D-dimer"])
    raise KeyError(kind)


NEG_KINDS = {"TIME", "DURATION", "VITALS", "DOSE", "SCORE", "EPONYM", "LAB"}

# Templates ("\n" inside a template is a line break of a header block). Validation (A) and test (B) share no
# template; both cover every PHI type and every hard-negative kind.
TEMPLATES_A = [
    "Patient: {FULLNAME}. MRN: {MRN}. DOB: {DATE}.",
    "PATIENT NAME:   {LASTFIRST}\nMRN:            {MRN}\nDATE OF SERVICE: {DATE}",
    "{FULLNAME} is a {AGE_OVER_89}-year-old admitted on {DATE} with dyspnea for {DURATION}.",
    "Seen by Dr. {NAME} at {HOSPITAL} at {TIME}; {VITALS}, {VITALS}.",
    "Home address: {ADDRESS}, {LOCATION}, {STATE} {ZIP}. Phone {PHONE}.",
    "Insurance member ID {HEALTH_PLAN}; account number {ACCOUNT}.",
    "Pacemaker serial number {DEVICE_ID} interrogated; history of {EPONYM}.",
    "Started {DOSE}; {SCORE} on arrival. {LAB} pending.",
    "Results sent to {EMAIL} and faxed to Fax: {FAX}.",
    "Driver's license {LICENSE}; vehicle VIN {VEHICLE_ID} involved in the collision.",
    "Portal link {URL} accessed from IP {IP_ADDRESS}.",
    "SSN: {SSN}. Follow-up on {DATE} with {FULLNAME}, MD.",
    "Her husband {FIRST} was at the bedside and agrees with the plan.",
    "Case d/w {LAST} from cardiology, who recommends {DOSE}.",
    "pt seen and examined with dr {LAST} at {TIME}. {EPONYM} noted.",
    "Discharged to {HOSPITAL} in {LOCATION} on {DATE}. {LAB} normal.",
]
TEMPLATES_B = [
    "Name: {FULLNAME}   Med Rec #: {MRN}   Admit date: {DATE}",
    "NAME: {LASTFIRST}\n  ACCT #: {ACCOUNT}\n  ADMITTED: {DATE}\n  ATTENDING: {INITIAL}, MD",
    "The patient, a {AGE_OVER_89} yo woman, lives at {ADDRESS} in {LOCATION}, {STATE} {ZIP}, and can be reached at {PHONE}.",
    "Discussed with Dr. {NAME} ({HOSPITAL}) on {DATE} at {TIME}. {VITALS}.",
    "Policy number {HEALTH_PLAN}. Billing account {ACCOUNT}.",
    "Implant ID: {DEVICE_ID}. {EPONYM} noted; {DOSE} given for {DURATION}.",
    "Contact daughter {FULLNAME} by e-mail {EMAIL}; fax {FAX}.",
    "DEA {LICENSE}. License plate number is not recorded; VIN: {VEHICLE_ID}.",
    "Records requested via {URL} (client {IP_ADDRESS}). {SCORE}.",
    "Social Security Number {SSN}. Electronically signed by {FULLNAME}, MD on {DATE}.",
    "Transferred from {HOSPITAL} on {DATE}; {EPONYM}; {VITALS}.",
    "{FIRST} reports that her son {FIRST} brings her to every appointment.",
    "Per {LAST}'s note from {DATE}, {LAB} was elevated; {SCORE}.",
    "PT IS A {AGE_OVER_89} YO MALE SEEN BY DR {LAST} AT {TIME}. {VITALS}.",
    "I spoke with {FULLNAME} (nephew, HCP) by phone at {PHONE} regarding {EPONYM}.",
    "Followed by {INITIAL} in clinic; {LAB}, {DOSE} for {DURATION}.",
]

_OCR = [("e", "c"), ("l", "1"), ("rn", "m"), ("o", "0"), ("a", "o"), ("i", "l")]


def _noise_words(s: str, rng: random.Random, p: float) -> str:
    """OCR-like confusions in non-slot text (never inside the slot values' gold spans)."""
    if p <= 0:
        return s
    out = s
    for a, b in _OCR:
        if a in out and rng.random() < p:
            i = out.find(a, rng.randrange(len(out)))
            if i >= 0:
                out = out[:i] + b + out[i + len(a):]
    if rng.random() < p:
        out = out.replace(" ", "  ", 1)
    return out


def _noise_id(v: str, rng: random.Random, p: float) -> str:
    """OCR-like noise inside an identifier: 0 read as O, a space inserted in a long digit run."""
    if rng.random() < p and "0" in v and not v.startswith(("http", "10.")):
        i = v.index("0")
        v = v[:i] + "O" + v[i + 1:]
    if rng.random() < p / 2 and re.fullmatch(r"\d{8,}", v):
        v = v[:4] + " " + v[4:]
    return v


def _wrap(text: str, rng: random.Random) -> str:
    """Hard-wrap at 60-80 columns by turning a space into a newline (length-preserving: offsets stay exact)."""
    width = rng.randint(60, 80)
    chars = list(text)
    col = 0
    last_space = -1
    for i, ch in enumerate(chars):
        if ch == "\n":
            col, last_space = 0, -1
            continue
        if ch == " ":
            last_space = i
        col += 1
        if col > width and last_space >= 0:
            chars[last_space] = "\n"
            col = i - last_space
            last_space = -1
    return "".join(chars)


def make_eval_set(n: int = 200, split: str = "test", seed: int | None = None, noise: float = 0.15, wrap: float = 0.4,
                  upper: float = 0.12) -> list[EvalNote]:
    """``n`` notes from the ``split`` templates. ``noise``: probability of each OCR-like confusion per chunk;
    ``wrap``: share of notes hard-wrapped; ``upper``: probability that a sentence is written in capitals."""
    if split not in ("validation", "test"):
        raise ValueError(f"split must be 'validation' or 'test', not {split!r}")
    global _POOLS
    templates = TEMPLATES_A if split == "validation" else TEMPLATES_B
    _POOLS = _Pools(split)
    rng = random.Random(seed if seed is not None else (11 if split == "validation" else 29))
    notes = []
    for i in range(n):
        sents = rng.sample(templates, k=min(len(templates), rng.randint(5, 9)))
        text, spans, negs = "", [], []
        for t in sents:
            caps = rng.random() < upper or re.sub(r"\{[A-Z_0-9]+\}", "", t).isupper()
            pos = 0
            for m in re.finditer(r"\{([A-Z_0-9]+)\}", t):
                lit = _noise_words(t[pos : m.start()], rng, noise)
                text += lit.upper() if caps else lit
                kind = m.group(1)
                val = _slot(kind, rng)
                if kind in ("MRN", "ACCOUNT", "HEALTH_PLAN", "DEVICE_ID", "LICENSE"):
                    val = _noise_id(val, rng, noise)
                if caps or (kind == "LASTFIRST" and rng.random() < 0.5):
                    val = val.upper()
                a = len(text)
                text += val
                lab = "NAME" if kind in _NAME_KINDS else kind
                if kind in NEG_KINDS:
                    negs.append((a, len(text), kind))
                elif kind != "STATE":
                    spans.append((a, len(text), lab))
                pos = m.end()
            tail = _noise_words(t[pos:], rng, noise)
            text += (tail.upper() if caps else tail) + ("\n" if "\n" in t or rng.random() < 0.3 else " ")
        text = text.rstrip()
        if rng.random() < wrap:
            text = _wrap(text, rng)
        # gold spans never start/end on whitespace
        notes.append(EvalNote(f"{split}-{i}", text, spans, negs))
    return notes
