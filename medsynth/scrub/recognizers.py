"""Clinical PHI recognizers that Presidio lacks or gets wrong, and the false-positive suppression lists.

Every recognizer is a regex with a capture group: only the identifier is tagged, not its label ("MRN:" stays).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PatternSpec", "CLINICAL_PATTERNS", "EPONYMS", "NON_PHI_WORDS", "DATE_PATTERNS", "is_time_or_duration"]

_MONTHS = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"


@dataclass(frozen=True)
class PatternSpec:
    entity: str
    regex: str
    group: int = 0
    score: float = 0.9
    flags: int = re.I


DATE_PATTERNS = [
    r"\b(?:0?[1-9]|1[0-2])[/\-.](?:0?[1-9]|[12]\d|3[01])[/\-.](?:19|20)?\d{2}\b",
    r"\b(?:19|20)\d{2}[/\-.](?:0?[1-9]|1[0-2])[/\-.](?:0?[1-9]|[12]\d|3[01])\b",
    r"\b(?:0?[1-9]|[12]\d|3[01])[\s\-]" + _MONTHS + r"[\s\-,]+(?:19|20)\d{2}\b",
    r"\b" + _MONTHS + r"\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?:,?\s+(?:19|20)\d{2})?\b",
    r"\b" + _MONTHS + r"\s+(?:19|20)\d{2}\b",
    r"\b(?:0?[1-9]|1[0-2])/(?:19|20)\d{2}\b",
]

_NAME = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
CLINICAL_PATTERNS: list[PatternSpec] = [
    PatternSpec("MRN", r"\b(?:MRN|MR#|Med(?:ical)?\s*Rec(?:ord)?(?:\s*(?:No\.?|Number|#))?|Record\s*(?:No\.?|Number|#)|Patient\s*ID|Pt\s*ID)\s*[:#]?\s*([A-Z]{0,3}-?\d[\d\-]{4,14})", 1, 0.95),
    PatternSpec("ACCOUNT", r"\b(?:Acct|Account|Billing|Encounter|Visit|FIN|CSN)\s*(?:No\.?|Number|#|ID)?\s*[:#]?\s*([A-Z]{0,3}-?\d[\d\-]{4,16})", 1, 0.95),
    PatternSpec("HEALTH_PLAN", r"\b(?:Member|Policy|Subscriber|Health\s*Plan|Insurance|Medicaid|Medicare|Beneficiary)\s*(?:ID|No\.?|Number|#)?\s*[:#]?\s*([A-Z]{0,4}\d[A-Z\d\-]{5,16})", 1, 0.95),
    PatternSpec("LICENSE", r"\b(?:License|Licence|Lic\.?|DEA|NPI|Certificate|Cert\.?|Driver'?s?\s*License|DL)\s*(?:No\.?|Number|#)?\s*[:#]?\s*([A-Z]{0,3}\d[A-Z\d\-]{4,14})", 1, 0.9),
    PatternSpec("DEVICE_ID", r"\b(?:Serial|S/N|SN|Device|Model|Lot|UDI|Implant)\s*(?:ID|No\.?|Number|#)?\s*[:#]?\s*((?=[A-Z0-9\-]*\d)[A-Z0-9][A-Z0-9\-]{4,24})\b", 1, 0.9),
    PatternSpec("VEHICLE_ID", r"\b(?:VIN)\s*[:#]?\s*([A-HJ-NPR-Z0-9]{17})\b", 1, 0.95),
    PatternSpec("VEHICLE_ID", r"\b(?:license\s*plate|plate\s*(?:No\.?|#|number)?)\s*[:#]?\s*([A-Z0-9]{2,4}[\s\-]?[A-Z0-9]{2,4})\b", 1, 0.9),
    PatternSpec("SSN", r"\b(?:SSN|Social\s*Security(?:\s*(?:No\.?|Number|#))?)\s*[:#]?\s*(\d{3}-?\d{2}-?\d{4})\b", 1, 0.95),
    PatternSpec("SSN", r"\b(\d{3}-\d{2}-\d{4})\b", 1, 0.85, 0),
    PatternSpec("AGE_OVER_89", r"\b((?:9\d|1[01]\d))(?:\s*|-)(?:year|yr)s?(?:\s*|-)old\b", 1, 0.95),
    PatternSpec("AGE_OVER_89", r"\b((?:9\d|1[01]\d))\s*(?:y/o|yo|y\.o\.|M\b|F\b)", 1, 0.9, 0),
    PatternSpec("AGE_OVER_89", r"\b[Aa]ge[sd]?\s*[:]?\s*((?:9\d|1[01]\d))\b", 1, 0.9, 0),
    PatternSpec("ADDRESS", r"\b(\d{1,6}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy)\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Z0-9\-]+)?)\b", 1, 0.95, 0),
    PatternSpec("ADDRESS", r"\b(P\.?\s?O\.?\s+Box\s+\d{1,6})\b", 1, 0.95),
    PatternSpec("ZIP", r"\b(?:[A-Z]{2}|ZIP(?:\s*code)?:?|Zip(?:\s*code)?:?)\s+(\d{5}(?:-\d{4})?)\b", 1, 0.95, 0),
    PatternSpec("LOCATION", r"\b((?:[A-Z][a-z]+\s){0,2}[A-Z][a-z]+),?\s+(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY])\s+\d{5}", 1, 0.9, 0),
    PatternSpec("HOSPITAL", r"\b((?:St\.?\s+|Saint\s+)?(?:[A-Z][a-z']+\s+){1,4}(?:Hospital|Medical Center|Med Ctr|Health Center|Clinic|Infirmary|Health System|Healthcare|Children's|Memorial|Rehabilitation Center|Nursing Home|Hospice))\b", 1, 0.9, 0),
    PatternSpec("PERSON", r"\b(?:Dr|Doctor|Mr|Mrs|Ms|Miss|Mx|Prof|Nurse|RN|NP|PA)\.?\s+((?:" + _NAME + r"\s+){0,2}" + _NAME + r")", 1, 0.95, 0),
    PatternSpec("PERSON", r"\b((?:" + _NAME + r"\s+)(?:[A-Z]\.\s+)?" + _NAME + r"),?\s+(?:MD|M\.D\.|DO|RN|NP|PA-C|PhD|FACR|FACC)\b", 1, 0.95, 0),
    PatternSpec("PERSON", r"\b(?:Patient|Pt|Name|Patient Name|Attending|Referring(?:\s+physician)?|Radiologist|PCP|Signed by|Dictated by|Electronically signed by|cc)\s*[:\-]\s*((?:" + _NAME + r",?\s+){0,2}" + _NAME + r")", 1, 0.95, 0),
    PatternSpec("EMAIL", r"\b([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})\b", 1, 0.99),
    PatternSpec("URL", r"\b((?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:])", 1, 0.95),
    PatternSpec("IP_ADDRESS", r"\b((?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d))\b", 1, 0.95, 0),
    PatternSpec("PHONE", r"(?<![\d/])((?:\+?1[\s\-.])?\(?\d{3}\)?[\s\-.]\d{3}[\s\-.]\d{4})(?!\d)", 1, 0.9, 0),
    PatternSpec("FAX", r"\b(?:Fax|F)\s*[:#]?\s*((?:\+?1[\s\-.])?\(?\d{3}\)?[\s\-.]?\d{3}[\s\-.]\d{4})\b", 1, 0.95),
] + [PatternSpec("DATE", p, 0, 0.9) for p in DATE_PATTERNS]

EPONYMS = {
    "foley", "parkinson", "parkinson's", "hodgkin", "hodgkin's", "crohn", "crohn's", "alzheimer", "alzheimer's", "babinski", "swan", "ganz",
    "swan-ganz", "whipple", "bell", "bell's", "cushing", "cushing's", "graves", "graves'", "hashimoto", "hashimoto's", "addison", "addison's",
    "down", "tourette", "kaposi", "wilson", "wilson's", "glasgow", "apgar", "gleason", "doppler", "holter", "pap", "heimlich", "trendelenburg",
    "fowler", "fowler's", "kussmaul", "cheyne", "stokes", "murphy", "murphy's", "mcburney", "homan", "homans", "romberg", "valsalva", "wells",
    "kerley", "hampton", "westermark", "bochdalek", "morgagni", "barrett", "barrett's", "raynaud", "raynaud's", "sjogren", "guillain", "barre",
    "lou", "gehrig", "huntington", "huntington's", "marfan", "turner", "klinefelter", "epstein", "barr", "gram", "pancoast", "horner", "chiari",
    "dandy", "walker", "paget", "paget's", "osler", "virchow", "schatzki", "zenker", "zenker's", "meckel", "hirschsprung", "tetralogy", "fallot",
    "ebstein", "kawasaki", "takayasu", "wegener", "mallory", "weiss", "hickman", "port-a-cath", "picc", "jackson", "pratt", "jackson-pratt",
    "levin", "salem", "minnesota", "sengstaken", "blakemore", "ace", "tylenol", "coumadin", "lasix", "xxxx", "ct", "mri", "ekg", "ecg",
}
NON_PHI_WORDS = {
    "dob", "mrn", "ssn", "bp", "hr", "rr", "spo2", "sao2", "temp", "cbc", "bmp", "cmp", "inr", "ptt", "bun", "wbc", "hgb", "hct", "plt",
    "chest", "heart", "lungs", "findings", "impression", "indication", "comparison", "history", "patient", "pa", "lateral", "ap", "pcp",
    "phone", "fax", "address", "zip", "name", "age", "date", "mg", "ml", "mcg", "units", "iv", "po", "prn", "bid", "tid", "qid", "daily",
    "aspirin", "metformin", "lisinopril", "atorvastatin", "heparin", "warfarin", "insulin", "albuterol", "prednisone", "furosemide",
    "metoprolol", "amlodipine", "omeprazole", "vancomycin", "ceftriaxone", "morphine", "acetaminophen", "ibuprofen", "levothyroxine",
    "troponin", "creatinine", "sodium", "potassium", "glucose", "lactate", "bnp", "d-dimer", "hba1c", "emergency department", "icu", "ed",
    "nkda", "copd", "chf", "cad", "mi", "dvt", "pe", "uti", "gerd", "htn", "dm", "ckd", "afib", "nsr",
}

_TIME = re.compile(r"^\s*(?:[01]?\d|2[0-3])[:h][0-5]\d(?::[0-5]\d)?\s*(?:am|pm|a\.m\.|p\.m\.|hrs?|hours)?\s*$|^\s*(?:1[0-2]|0?[1-9])\s*(?:am|pm|a\.m\.|p\.m\.)\s*$", re.I)
_DURATION = re.compile(r"^\s*(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|few|a)\s*(?:-|\s)?(?:minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|years?|yrs?)(?:\s+(?:ago|prior|later|earlier))?\s*$", re.I)
_RELATIVE = re.compile(r"^\s*(?:today|yesterday|tomorrow|tonight|now|overnight|this (?:morning|afternoon|evening)|last (?:night|week|month|year)|daily|weekly|monthly|annually|postoperative day \d+|pod \d+|hospital day \d+)\s*$", re.I)


def is_time_or_duration(s: str) -> bool:
    return bool(_TIME.match(s) or _DURATION.match(s) or _RELATIVE.match(s))
