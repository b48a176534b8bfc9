"""A labelled PHI evaluation set: synthetic clinical notes with gold character offsets for every HIPAA Safe Harbor
identifier type that occurs in free text, plus hard negatives (times, durations, vitals, doses, scores, eponyms).

Notes are assembled from sentence templates with typed slots; the offsets of every filled slot are recorded, so
gold spans are exact by construction. Templates are split in two disjoint halves: ``split="validation"`` (used to
tune the recognizers) and ``split="test"`` (held-out templates and a different seed; the reported figures).
Everything here is invented; no real person is described.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["EvalNote", "make_eval_set", "PHI_TYPES"]

FIRST = ["John", "Maria", "Wei", "Fatima", "Olga", "Carlos", "Aisha", "Liam", "Priya", "Tomasz", "Grace", "Mohammed", "Elena", "Kenji", "Sarah", "David", "Amara", "Lucas"]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Ivanova", "Mendoza", "Khan", "O'Brien", "Patel", "Nowak", "Kim", "Haddad", "Rossi", "Tanaka", "Johnson", "Williams", "Mensah", "Silva"]
CITIES = [("Springfield", "IL"), ("Columbus", "OH"), ("Fresno", "CA"), ("Tacoma", "WA"), ("Albany", "NY"), ("Austin", "TX"), ("Denver", "CO"), ("Raleigh", "NC")]
STREETS = ["Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane", "Elm Road", "Pine Court", "Washington Boulevard", "Lakeview Terrace"]
HOSPITALS = ["St. Mary's Hospital", "Riverside Medical Center", "Mercy General Hospital", "Northwest Clinic", "Lakeside Health Center", "Good Samaritan Hospital"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
PHI_TYPES = ["NAME", "DATE", "AGE_OVER_89", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "HEALTH_PLAN", "ACCOUNT", "LICENSE", "VEHICLE_ID",
             "DEVICE_ID", "URL", "IP_ADDRESS", "ADDRESS", "ZIP", "LOCATION", "HOSPITAL"]


@dataclass
class EvalNote:
    id: str
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # gold PHI
    negatives: list[tuple[int, int, str]] = field(default_factory=list)  # clinical non-PHI expressions


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1990, 2024), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{y}-{m:02d}-{d:02d}", f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1][:3]} {y}", f"{MONTHS[m - 1]} {y}"])


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def _slot(kind: str, rng: random.Random) -> str:
    if kind == "NAME":
        return rng.choice([f"{rng.choice(FIRST)} {rng.choice(LAST)}", rng.choice(LAST)])
    if kind == "FULLNAME":
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if kind == "DATE":
        return _date(rng)
    if kind == "AGE_OVER_89":
        return str(rng.randint(90, 104))
    if kind in ("PHONE", "FAX"):
        a, b, c = rng.randint(200, 989), rng.randint(200, 989), rng.randint(0, 9999)
        return rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}"])
    if kind == "EMAIL":
        return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower().replace(chr(39), '')}{rng.randint(1, 99)}@{rng.choice(['mail.com', 'example.net', 'hospital.org'])}"
    if kind == "SSN":
        return f"{_digits(rng, 3)}-{_digits(rng, 2)}-{_digits(rng, 4)}"
    if kind == "MRN":
        return rng.choice([_digits(rng, 8), f"MR{_digits(rng, 7)}", f"{_digits(rng, 3)}-{_digits(rng, 4)}"])
    if kind == "HEALTH_PLAN":
        return f"{rng.choice(['XEH', 'BCB', 'UHC', 'AET'])}{_digits(rng, 9)}"
    if kind == "ACCOUNT":
        return _digits(rng, rng.randint(7, 11))
    if kind == "LICENSE":
        return f"{rng.choice(['A', 'B', 'MD', 'RN'])}{_digits(rng, 7)}"
    if kind == "VEHICLE_ID":
        return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
    if kind == "DEVICE_ID":
        return f"{rng.choice(['PM', 'SN', 'ICD'])}{_digits(rng, 6)}-{rng.choice('ABCDEFGH')}{_digits(rng, 2)}"
    if kind == "URL":
        return f"https://portal.{rng.choice(['mercyhealth', 'riverside-mc', 'stmarys'])}.org/patient/{_digits(rng, 6)}"
    if kind == "IP_ADDRESS":
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind == "ADDRESS":
        return f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"
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
        return rng.choice([f"{rng.randint(0, 23):02d}:{rng.choice(['00', '15', '30', '45'])}", f"{rng.randint(1, 12)} pm", f"{rng.randint(1, 11)}:30 am"])
    if kind == "DURATION":
        return rng.choice([f"{rng.randint(2, 14)} days", f"{rng.randint(1, 6)} weeks", f"{rng.randint(2, 48)} hours", "3 months"])
    if kind == "VITALS":
        return rng.choice([f"BP {rng.randint(95, 170)}/{rng.randint(55, 100)}", f"HR {rng.randint(50, 120)}", f"SpO2 {rng.randint(88, 100)}%", f"temperature {rng.randint(36, 39)}.{rng.randint(0, 9)} C"])
    if kind == "DOSE":
        return rng.choice(["metoprolol 25 mg twice daily", "furosemide 40 mg IV", "heparin 5000 units", "aspirin 81 mg", "vancomycin 1 g q12h"])
    if kind == "SCORE":
        return rng.choice([f"GCS {rng.randint(8, 15)}", f"Gleason 3+{rng.randint(3, 4)}", f"APGAR {rng.randint(7, 9)}", f"pain score {rng.randint(0, 10)}/10"])
    if kind == "EPONYM":
        return rng.choice(["Foley catheter", "Parkinson disease", "Swan-Ganz catheter", "Crohn disease", "Hodgkin lymphoma", "Babinski sign", "Glasgow Coma Scale", "Kerley B lines", "Cushing syndrome"])
    raise KeyError(kind)


NEG_KINDS = {"TIME", "DURATION", "VITALS", "DOSE", "SCORE", "EPONYM"}
# (template, split) — slots {KIND}; FULLNAME/NAME -> NAME gold label; STATE is not PHI (kept as context)
TEMPLATES_A = [
    "Patient: {FULLNAME}. MRN: {MRN}. DOB: {DATE}.",
    "{FULLNAME} is a {AGE_OVER_89}-year-old admitted on {DATE} with dyspnea for {DURATION}.",
    "Seen by Dr. {NAME} at {HOSPITAL} at {TIME}; {VITALS}, {VITALS}.",
    "Home address: {ADDRESS}, {LOCATION}, {STATE} {ZIP}. Phone {PHONE}.",
    "Insurance member ID {HEALTH_PLAN}; account number {ACCOUNT}.",
    "Pacemaker serial number {DEVICE_ID} interrogated; history of {EPONYM}.",
    "Started {DOSE}; {SCORE} on arrival.",
    "Results sent to {EMAIL} and faxed to Fax: {FAX}.",
    "Driver's license {LICENSE}; vehicle VIN {VEHICLE_ID} involved in the collision.",
    "Portal link {URL} accessed from IP {IP_ADDRESS}.",
    "SSN: {SSN}. Follow-up on {DATE} with {FULLNAME}, MD.",
]
TEMPLATES_B = [
    "Name: {FULLNAME}   Med Rec #: {MRN}   Admit date: {DATE}",
    "The patient, a {AGE_OVER_89} yo woman, lives at {ADDRESS} in {LOCATION}, {STATE} {ZIP}, and can be reached at {PHONE}.",
    "Discussed with Dr. {NAME} ({HOSPITAL}) on {DATE} at {TIME}. {VITALS}.",
    "Policy number {HEALTH_PLAN}. Billing account {ACCOUNT}.",
    "Implant ID: {DEVICE_ID}. {EPONYM} noted; {DOSE} given for {DURATION}.",
    "Contact daughter {FULLNAME} by e-mail {EMAIL}; fax {FAX}.",
    "DEA {LICENSE}. License plate number is not recorded; VIN: {VEHICLE_ID}.",
    "Records requested via {URL} (client {IP_ADDRESS}). {SCORE}.",
    "Social Security Number {SSN}. Electronically signed by {FULLNAME}, MD on {DATE}.",
    "Transferred from {HOSPITAL} on {DATE}; {EPONYM}; {VITALS}.",
]


def make_eval_set(n: int = 200, split: str = "test", seed: int | None = None) -> list[EvalNote]:
    import re

    templates = TEMPLATES_A if split == "validation" else TEMPLATES_B
    rng = random.Random(seed if seed is not None else (11 if split == "validation" else 29))
    notes = []
    for i in range(n):
        sents = rng.sample(templates, k=min(len(templates), rng.randint(4, 7)))
        text, spans, negs = "", [], []
        for t in sents:
            pos = 0
            for m in re.finditer(r"\{([A-Z_0-9]+)\}", t):
                text += t[pos : m.start()]
                kind = m.group(1)
                val = _slot(kind, rng)
                a = len(text)
                text += val
                lab = "NAME" if kind in ("NAME", "FULLNAME") else kind
                if kind in NEG_KINDS:
                    negs.append((a, len(text), kind))
                elif kind != "STATE":
                    spans.append((a, len(text), lab))
                pos = m.end()
            text += t[pos:] + " "
        notes.append(EvalNote(f"{split}-{i}", text.strip(), spans, negs))
    return notes
