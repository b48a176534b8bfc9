"""Clinical PHI recognizers that Presidio lacks or gets wrong, and the false-positive suppression lists.

Every recognizer is a regex with a capture group: only the identifier is tagged, not its label ("MRN:" stays).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PatternSpec", "CLINICAL_PATTERNS", "EPONYMS", "EPONYM_SURNAMES", "NON_PHI_WORDS", "DATE_PATTERNS", "is_time_or_duration"]

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
    r"\b" + _MONTHS + r",?\s+of\s+(?:19|20)\d{2}\b",  # "August of 2000"
    r"\b" + _MONTHS + r"\s*['’]\d{2}\b",  # "Sep '75"
]
#: a weekday written before a date belongs to it ("Mon 24 Oct 1977", "Thursday, March 3, 2001")
_WEEKDAY = r"(?:Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)(?:day|sday|nesday|rsday|urday)?\.?,?"
DATE_PATTERNS.append(r"\b" + _WEEKDAY + r"\s+(?:" + "|".join(p[2:] for p in DATE_PATTERNS) + ")")

_OCR_CONFUSIONS = {"e": "[ec]", "l": "[l1I]", "i": "[il1]", "o": "[o0a]", "a": "[ao]", "c": "[ce]", "s": "[s5]", "n": "(?:n|rn)", "m": "(?:m|rn)"}


def ocr(word: str) -> str:
    """A regex for ``word`` tolerant of the commonest OCR confusions (e/c, l/1/I, o/0, a/o, rn/m, s/5); used for
    the context keywords of the identifier patterns ("serial", "account", "year-old") in scanned notes."""
    out = []
    for ch in word:
        low = ch.lower()
        out.append(_OCR_CONFUSIONS.get(low, re.escape(ch)) if low in _OCR_CONFUSIONS else re.escape(ch))
    return "".join(out)


def _kw(*words: str) -> str:
    return "(?i:" + "|".join(r"\s+".join(ocr(w) for w in phrase.split()) for phrase in words) + ")"


# A name token: Title-case (O'Brien, MacAllister, Jean-Luc) or ALL CAPS (headers); particles (van der, de, da).
# letters of the Latin script with their diacritics (Müller, Ó Briain, Łukasz, Şahin): names are not ASCII-only
_UP = "A-Z" + "".join(ch for ch in map(chr, range(0xC0, 0x250)) if ch.isupper() and ch.isalpha())
_LO = "a-z" + "".join(ch for ch in map(chr, range(0xC0, 0x250)) if ch.islower() and ch.isalpha())
_TITLE_TOK = rf"(?:(?:Mac|Mc|O'|O’|Fitz)?[{_UP}][{_LO}]+(?:[-'’][{_UP}][{_LO}]+)?)"
_CAPS_TOK = rf"(?:[{_UP}](?:[{_UP}]|'[{_UP}])+(?:-[{_UP}]{{2,}})?)"
# surname particles of many traditions: Dutch/German/Romance (van der, von, de la, dos), Irish/Scottish (Ó, Ní, Mac),
# Arabic (bin, ibn, al-), French (St-)
_PART = (r"(?:(?:[Vv]an|[Vv]on|[Dd]e|[Dd]er|[Dd]en|[Dd]a|[Dd]el|[Dd]ella|[Dd]i|[Dd]os|[Dd]as|[Dd]u|[Ll]a|[Ll]e|[Tt]er|[Tt]en|[Zz]u|"
         r"Ó|Ní|Nic|Mac|Mc|Ua|bin|binti|ibn|Abu|VAN|VON|DE|DER|DEN|DA|DEL|DI|DOS|DU|LA|LE|MAC|NÍ|BIN|IBN)\s+|(?:[Aa]l|[Ee]l|AL|EL|St|Ste|ST)-)")
_TOK = rf"(?:{_PART}{{0,2}}(?:{_TITLE_TOK}|{_CAPS_TOK}))"
_NAME = _TITLE_TOK
_NAME_ANY = rf"{_TOK}(?:[ \t]+{_TOK}){{0,2}}"  # one to three tokens, on one line
_NAME_TITLE = rf"{_PART}{{0,2}}{_TITLE_TOK}(?:[ \t]+{_PART}{{0,2}}{_TITLE_TOK}){{0,2}}"  # Title-case only (free-text triggers)
_INITIAL = rf"(?:[{_UP}]\.\s?){{1,2}}"
_LABEL_PERSON = _kw("Patient Name", "Pt Name", "Name", "Patient", "Attending", "Attending Physician", "Referring Physician", "Referring",
                    "Radiologist", "PCP", "Signed by", "Dictated by", "Transcribed by", "Electronically signed by", "cc", "Guarantor",
                    "Emergency Contact", "Next of Kin", "NOK", "HCP", "Provider", "Physician", "Surgeon", "Resident", "Fellow")
_RELATION = _kw("husband", "wife", "son", "daughter", "mother", "father", "brother", "sister", "nephew", "niece", "partner", "spouse",
                "friend", "caregiver", "grandson", "granddaughter", "aunt", "uncle", "cousin", "neighbor", "neighbour", "fiance", "fiancee")
_TRIGGER = _kw("d/w", "discussed with", "spoke with", "spoke to", "seen with", "examined with", "per", "called", "paged", "signed out to",
               "consulted", "covering", "seen by", "followed by", "care of", "c/o", "attending", "cosigned by", "reviewed with")
_NUM_ID = r"(?=[A-Z0-9\-]*\d)[A-Z0-9][A-Z0-9\-]"
_HOSP_SUFFIX = (r"(?:Hospital|Medical\s+Center|Med\s+Ctr|Health\s+Center|Clinic|Infirmary|Health\s+System|Healthcare|Children's|Memorial|"
                r"Rehabilitation\s+Center|Nursing\s+Home|Hospice|Medical\s+Centre|Surgical\s+Center|Cancer\s+Center)")
_CAPS_STOP = r"(?!(?:TO|FROM|AT|IN|ON|BY|WITH|AND|OR|OF|THE|FOR|VIA|DISCHARGED|TRANSFERRED|ADMITTED|SEEN|SENT|REFERRED)\b)"

CLINICAL_PATTERNS: list[PatternSpec] = [
    PatternSpec("MRN", r"\b(?:MRN|MR#|" + _kw("Med Rec", "Medical Record", "Med Record", "Record", "Patient ID", "Pt ID", "Chart") + r")\s*(?:No\.?|Number|#)?\s*[:#]?\s*([A-Z]{0,3}-?\d[\dO\-]{3,14}(?:[ ][\dO]{3,10})?)", 1, 0.95),
    PatternSpec("ACCOUNT", r"\b" + _kw("Acct", "Account", "Billing", "Encounter", "Visit", "FIN", "CSN", "Billing account") + r"\s*(?:" + _kw("No", "Number", "ID") + r"\.?|#)?\s*[:#]?\s*([A-Z]{0,3}-?\d[\dO\-]{3,16}(?:[ ][\dO]{3,10})?)", 1, 0.95),
    PatternSpec("HEALTH_PLAN", r"\b" + _kw("Member", "Policy", "Subscriber", "Health Plan", "Insurance", "Medicaid", "Medicare", "Beneficiary", "Group") + r"\s*(?:ID|" + _kw("No", "Number") + r"\.?|#)?\s*[:#]?\s*([A-Z]{0,4}\d[A-Z\dO\-]{5,16})", 1, 0.95),
    PatternSpec("LICENSE", r"\b(?:" + _kw("License", "Licence", "Certificate") + r"|Lic\.?|DEA|NPI|Cert\.?|DL)\s*(?:" + _kw("No", "Number") + r"\.?|#)?\s*[:#]?\s*([A-Z]{0,3}\d[A-Z\dO\-]{4,14})", 1, 0.9),
    PatternSpec("DEVICE_ID", r"\b(?:" + _kw("Serial", "Device", "Model", "Implant") + r"|S/N|SN|Lot|UDI)\s*(?:ID|" + _kw("No", "Number") + r"\.?|#)?\s*[:#]?\s*(" + _NUM_ID + r"{4,24})\b", 1, 0.9),
    PatternSpec("VEHICLE_ID", r"\b(?:VIN)\s*[:#]?\s*([A-HJ-NPR-Z0-9]{17})\b", 1, 0.95),
    PatternSpec("VEHICLE_ID", r"\b(?:license\s*plate|plate\s*(?:No\.?|#|number)?)\s*[:#]?\s*((?=[A-Z]*\d)[A-Z0-9]{2,4}[\s\-]?[A-Z0-9]{2,4})\b", 1, 0.9),
    PatternSpec("SSN", r"\b(?:SSN|" + _kw("Social Security") + r"(?:\s*(?:No\.?|Number|#))?)\s*[:#]?\s*(\d{3}[-\s]?\d{2}[-\s]?\d{4})\b", 1, 0.95),
    PatternSpec("SSN", r"\b(\d{3}-\d{2}-\d{4})\b", 1, 0.85, 0),
    # an unexplained long number or alphanumeric code (Safe Harbor #18, "any other unique identifying number"): 7+ digits
    PatternSpec("ID", r"(?<![\w/.\-])((?=(?:[A-Z]*[\dO]){7})[A-Z]{0,4}\d[\dO]{5,}[A-Z\d]*(?:-[A-Z\d]+)?)(?![\w/.]|-\d)", 1, 0.6, 0),
    PatternSpec("AGE_OVER_89", r"\b((?:9\d|1[01]\d))(?:\s*|-)" + _kw("year", "yr") + r"s?(?:\s*|-)" + _kw("old") + r"\b", 1, 0.95),
    PatternSpec("AGE_OVER_89", r"\b((?:9\d|1[01]\d))\s*(?:y/o|yo|y\.o\.)", 1, 0.9),
    PatternSpec("AGE_OVER_89", r"\b((?:9\d|1[01]\d))\s*(?:M|F)\b", 1, 0.9, 0),
    PatternSpec("AGE_OVER_89", r"\b(?:" + _kw("age", "aged") + r")\s*[:]?\s*((?:9\d|1[01]\d))\b", 1, 0.9),
    # "101 years" after a name or a DOB (not a duration: "for 90 years", "over 95 years ago")
    PatternSpec("AGE_OVER_89", r"(?<!\bfor )(?<!\bover )(?<!\bpast )(?<!\bin )\b((?:9\d|1[01]\d))\s*" + _kw("years", "yrs")
                + r"(?!\s*(?:ago|later|since|of|after|before|earlier|prior)\b)(?:[\s,.;)]|$)", 1, 0.85),
    # ages written out: "ninety-two years old", "aged ninety-five", "one hundred and one years"
    PatternSpec("AGE_OVER_89", r"\b((?i:ninety(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine))?|(?:one\s+)?hundred(?:\s+and\s+(?:one|two|three|four|five|six|seven|eight|nine|ten))?))"
                + r"(?=[\s-]+(?i:years?|yrs?|-year-old)\b)", 1, 0.85),
    PatternSpec("AGE_OVER_89", r"\b(?:" + _kw("age", "aged") + r")\s*[:]?\s*((?i:ninety(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine))?))\b", 1, 0.85),
    PatternSpec("ADDRESS", r"\b(\d{1,6}\s+(?:[NSEW]\.?\s+)?(?:(?:[A-Z][a-z]+|[A-Z]{2,}|\d{1,3}(?i:st|nd|rd|th))\s+){1,3}(?i:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy)\.?(?:,?\s+(?i:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Z0-9\-]+)?)\b", 1, 0.95, 0),
    PatternSpec("ADDRESS", r"\b(P\.?\s?O\.?\s+Box\s+\d{1,6})\b", 1, 0.95),
    PatternSpec("ZIP", r"\b(?:[A-Z]{2}|ZIP(?:\s*code)?:?|Zip(?:\s*code)?:?)\s+(\d{5}(?:-\d{4})?)\b", 1, 0.95, 0),
    # Canadian and UK postcodes (their letter-digit layouts are distinctive with the space; without it "T2N0M0" is a tumour stage)
    PatternSpec("ZIP", r"\b([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ ]\d[ABCEGHJ-NPRSTV-Z]\d)\b", 1, 0.85, 0),
    PatternSpec("ZIP", r"\b([A-Z]{1,2}\d[A-Z\d]?[ ]\d[ABD-HJLNP-UW-Z]{2})\b", 1, 0.85, 0),
    PatternSpec("LOCATION", r"\b((?:[A-Z][a-z]+\s){0,2}[A-Z][a-z]+),?\s+(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY])\s+\d{5}", 1, 0.9, 0),
    PatternSpec("HOSPITAL", r"\b((?:St\.?\s+|Saint\s+)?(?:[A-Z][a-z']+\s+){1,4}" + _HOSP_SUFFIX + r")\b", 1, 0.9, 0),
    PatternSpec("HOSPITAL", r"\b((?:ST\.?\s+|SAINT\s+)?(?:" + _CAPS_STOP + r"[A-Z][A-Z'.]+\s+){1,4}(?:HOSPITAL|MEDICAL\s+CENTER|MED\s+CTR|HEALTH\s+CENTER|CLINIC|INFIRMARY|HEALTH\s+SYSTEM|MEMORIAL|REHABILITATION\s+CENTER|NURSING\s+HOME|HOSPICE))\b", 1, 0.9, 0),
    # people: a title, a credential, a header label, a family relation or a free-text trigger before/after the name
    PatternSpec("PERSON", r"\b(?i:Dr|Doctor|Mr|Mrs|Ms|Miss|Mx|Prof|Nurse)\.?[ \t]+(" + _NAME_ANY + r")", 1, 0.95, 0),
    PatternSpec("PERSON", r"\b(?:RN|NP|PA)[ \t]+(" + _NAME_TITLE + r")", 1, 0.9, 0),
    PatternSpec("PERSON", r"\b((?:" + _INITIAL + r"|" + _TOK + r"[ \t]+)(?:" + _INITIAL + r"[ \t]*)?" + _TOK + r"),?\s+(?:MD|M\.D\.|DO|RN|NP|PA-C|PhD|FACR|FACC|MBBS|DNP|CRNA)\b", 1, 0.95, 0),
    PatternSpec("PERSON", r"(?<![\w-])" + _LABEL_PERSON + r"[ \t]*[:\-]\s*(" + _TOK + r",?[ \t]+" + _TOK + r"(?:[ \t]+" + _TOK + r")?|" + _INITIAL + r"[ \t]*" + _TOK
                + r"|" + _TOK + r",?[ \t]+" + _INITIAL + r"|" + _TOK + r")", 1, 0.95, 0),
    PatternSpec("PERSON", r"\b" + _RELATION + r",?[ \t]+(" + _NAME_ANY + r")", 1, 0.85, 0),
    PatternSpec("PERSON", r"(?<![\w/])" + _TRIGGER + r"[ \t]+(?:(?i:dr)\.?[ \t]+)?(" + _NAME_TITLE + r"|" + _INITIAL + r"[ \t]*" + _TITLE_TOK + r")(?='s|\b)", 1, 0.7, 0),
    PatternSpec("EMAIL", r"\b([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})\b", 1, 0.99),
    PatternSpec("URL", r"\b((?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:])", 1, 0.95),
    PatternSpec("IP_ADDRESS", r"\b((?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d))\b", 1, 0.95, 0),
    PatternSpec("PHONE", r"(?<![\d/])((?:\+?1[\s\-.])?\(?\d{3}\)?[\s\-.]\d{3}[\s\-.]\d{4})(?!\d)", 1, 0.9, 0),
    PatternSpec("PHONE", r"(?<![\w+])(\+(?:[2-9]\d{0,2})[\s\-.]?\(?\d{1,4}\)?(?:[\s\-.]?\d{2,4}){2,4})(?!\d)", 1, 0.85, 0),
    PatternSpec("FAX", r"\b(?:" + _kw("Fax") + r"|F)\s*[:#]?\s*((?:\+?1[\s\-.])?\(?\d{3}\)?[\s\-.]?\d{3}[\s\-.]\d{4})\b", 1, 0.95),
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
    # more clinical eponyms (signs, fractures, tumours, scores): a name only outside their clinical phrase
    "charcot", "kernig", "brudzinski", "colles", "bankart", "lisfranc", "dupuytren", "quervain", "tinel", "phalen", "lachman", "mcmurray",
    "trousseau", "chvostek", "lhermitte", "prinzmetal", "dressler", "libman", "krukenberg", "wilms", "burkitt", "merkel", "sternberg",
    "auer", "korsakoff", "wernicke", "lyme", "wolff", "ludwig", "bruton", "fanconi", "gaucher", "niemann", "creutzfeldt", "jakob",
    "reye", "behcet", "zollinger", "ellison",
}
#: eponyms that are also common surnames: never suppressed on their own (a patient may be called Baker), only inside
#: their clinical phrase ("Baker's cyst", "Still's disease") — used by the guard of the learned tagger
EPONYM_SURNAMES = {"baker", "still", "white", "cullen", "grey", "gray", "ewing", "bowen", "howell", "jolly", "kerr", "pick", "sacks", "tay",
                   "graham", "austin", "flint", "beck", "jones", "smith", "thompson", "hunter", "brown", "moss", "frost", "cox", "hart"}
NON_PHI_WORDS = {
    # titles, roles and letter/header words (never a name on their own)
    "dr", "mr", "mrs", "ms", "requesting", "physician", "specimen", "tel", "discharge", "summary", "callback", "employed", "sincerely",
    "yours", "prescription", "consultant", "assistant", "pathologist", "surgeon", "regards", "dear",
    # departments and services (a hospital's own name is kept: "Riverside Clinic" has a word not listed here)
    "cardiology", "nephrology", "neurology", "oncology", "radiology", "pulmonology", "endocrinology", "dermatology", "gastroenterology",
    "urology", "rheumatology", "hematology", "psychiatry", "pediatrics", "obstetrics", "gynecology", "orthopedics", "management",
    "delivery", "labor", "health", "home", "clinic", "unit", "department", "service", "services", "surgery", "care", "hugger", "bair",
    "nyha", "nihss", "killip", "mallampati", "gcs", "meld", "apache", "curb-65", "cha2ds2-vasc", "has-bled", "child-pugh", "timi",
    "dob", "mrn", "ssn", "bp", "hr", "rr", "spo2", "sao2", "temp", "cbc", "bmp", "cmp", "inr", "ptt", "bun", "wbc", "hgb", "hct", "plt",
    "chest", "heart", "lungs", "findings", "impression", "indication", "comparison", "history", "patient", "pa", "lateral", "ap", "pcp",
    "phone", "fax", "address", "zip", "name", "age", "date", "mg", "ml", "mcg", "units", "iv", "po", "prn", "bid", "tid", "qid", "daily",
    "aspirin", "metformin", "lisinopril", "atorvastatin", "heparin", "warfarin", "insulin", "albuterol", "prednisone", "furosemide",
    "metoprolol", "amlodipine", "omeprazole", "vancomycin", "ceftriaxone", "morphine", "acetaminophen", "ibuprofen", "levothyroxine",
    "troponin", "creatinine", "sodium", "potassium", "glucose", "lactate", "bnp", "d-dimer", "hba1c", "emergency department", "icu", "ed",
    "nkda", "copd", "chf", "cad", "mi", "dvt", "pe", "uti", "gerd", "htn", "dm", "ckd", "afib", "nsr",
    # note vocabulary that generic NER tags as a person/place when capitalised (headers, OCR, sentence starts)
    "driver", "driver's", "insurance", "portal", "license", "licence", "vehicle", "policy", "billing", "member", "account", "acct",
    "examined", "discharged", "admitted", "transferred", "seen", "results", "records", "started", "given", "noted", "pending",
    "follow-up", "followup", "electronically", "signed", "dictated", "contact", "implant", "pacemaker", "serial", "social", "security",
    "attending", "resident", "radiology", "cardiology", "neurology", "oncology", "surgery", "medicine", "pharmacy", "nursing", "icu",
    "pt", "hcp", "prn", "qhs", "q6h", "q4h", "q12h", "iv", "im", "sq", "sc", "stat", "npo", "sob", "cp", "abd", "ext", "neuro", "heent",
    "assessment", "plan", "subjective", "objective", "exam", "labs", "imaging", "impression", "recommendations", "disposition",
    "lasix", "coumadin", "zosyn", "tylenol", "motrin", "advil", "norco", "percocet", "dilaudid", "keppra", "zofran", "protonix", "ativan",
    "haldol", "seroquel", "eliquis", "xarelto", "plavix", "lovenox", "enoxaparin", "toradol", "flagyl", "cipro", "levaquin", "bactrim",
    "keflex", "augmentin", "unasyn", "cefepime", "meropenem", "solumedrol", "decadron", "lipitor", "zocor", "norvasc", "toprol",
    "lopressor", "cardizem", "digoxin", "amiodarone", "nitroglycerin", "narcan", "benadryl", "colace", "senna", "miralax", "chem-7",
    "chem", "cbc", "diff", "lft", "lfts", "tsh", "abg", "vbg", "ua", "ucx", "bcx", "ekg", "echo", "cxr", "kub", "mmse", "nihss", "curb-65",
    "gcs", "apgar", "gleason", "wells", "dimer", "d-dimer", "hba1c", "troponin", "bnp", "inr", "ptt", "lactate",
}

_TIME = re.compile(r"^\s*(?:[01]?\d|2[0-3])[:h][0-5]\d(?::[0-5]\d)?\s*(?:am|pm|a\.m\.|p\.m\.|hrs?|hours)?\s*$|^\s*(?:1[0-2]|0?[1-9])\s*(?:am|pm|a\.m\.|p\.m\.)\s*$", re.I)
_DURATION = re.compile(r"^\s*(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|few|a)\s*(?:-|\s)?(?:minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|years?|yrs?)(?:\s+(?:ago|prior|later|earlier))?\s*$", re.I)
_RELATIVE = re.compile(r"^\s*(?:today|yesterday|tomorrow|tonight|now|overnight|this (?:morning|afternoon|evening)|last (?:night|week|month|year)|daily|weekly|monthly|annually|postoperative day \d+|pod \d+|hospital day \d+)\s*$", re.I)


def is_time_or_duration(s: str) -> bool:
    return bool(_TIME.match(s) or _DURATION.match(s) or _RELATIVE.match(s))
