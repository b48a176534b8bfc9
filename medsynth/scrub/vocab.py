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
"""

from __future__ import annotations

import bz2
import pickle
import re
from functools import lru_cache

from .phi_values import in_partition

__all__ = ["diagnosis_terms", "drug_terms", "cased"]

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


@lru_cache(maxsize=4)
def drug_terms(partition: str) -> tuple[str, ...]:
    """Generic and brand names (lower case as stored) of drugs with a MedlinePlus monograph, or () when missing."""
    try:
        from importlib.resources import files

        src = files("drug_named_entity_recognition") / "drug_ner_dictionary.pkl.bz2"
        with bz2.open(str(src)) as fh:  # the package's own data file, as its own loader reads it
            d = pickle.load(fh)  # noqa: S301 - an installed package's bundled dictionary, not user input
    except (ImportError, OSError, ModuleNotFoundError):
        return ()
    canon = d["drug_canonical_to_data"]
    out: set[str] = set()
    for variant, cs in d["drug_variant_to_canonical"].items():
        if not any(canon.get(c, {}).get("medline_plus_id") for c in cs):
            continue
        if "," in variant or len(variant.split()) > 3 or not _WORD_OK.match(variant):
            continue
        if in_partition(variant, partition):
            out.add(variant)
    return tuple(sorted(out))


def cased(r, term: str, kind: str) -> str:  # noqa: ANN001 - random.Random
    """``term`` written as notes write it: drugs lower or capitalised (brands) or upper; diagnoses as listed,
    lower case mid-sentence, title case in problem lists, upper case in headers."""
    k = r.random()
    if kind == "drug":
        return term if k < 0.45 else term[:1].upper() + term[1:] if k < 0.8 else term.title() if k < 0.9 else term.upper()
    return term if k < 0.4 else term[:1].lower() + term[1:] if k < 0.7 else term.title() if k < 0.92 else term.upper()
