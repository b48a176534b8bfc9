"""Streaming exact + MinHash-LSH dedup (datasketch)."""

import random

import pytest

from medsynth.text.dedup import Deduplicator, normalise

BASE = ("FINDINGS: The heart is normal in size. The mediastinum is unremarkable. The lungs are clear without focal "
        "consolidation, pleural effusion or pneumothorax. No acute bony abnormality. IMPRESSION: No acute cardiopulmonary disease.")


def _edit(text: str, k: int, rng: random.Random) -> str:
    w = text.split()
    for _ in range(k):
        w[rng.randrange(len(w))] = rng.choice(["mild", "small", "left", "stable", "chronic"])
    return " ".join(w)


def test_exact_near_and_unique_with_reasons_and_first_ids():
    rng = random.Random(0)
    dd = Deduplicator(threshold=0.7)
    other = "FINDINGS: Calcified granuloma in the right upper lobe. Mild degenerative changes of the spine. IMPRESSION: Old granulomatous disease."
    res = dd.add_many([("a", BASE), ("b", "  findings:  the HEART is normal in size.  " + BASE[38:]), ("c", _edit(BASE, 1, rng)),
                       ("d", other), ("e", BASE.replace("normal in size", "enlarged in size"))])
    assert res[0].duplicate_of is None
    assert (res[1].duplicate_of, res[1].reason) == ("a", "exact")
    assert (res[2].duplicate_of, res[2].reason) == ("a", "near") and 0.7 <= res[2].similarity < 1
    assert res[3].duplicate_of is None
    assert res[4].reason == "near" and res[4].duplicate_of == "a"
    s = dd.stats()
    assert (s["seen"], s["unique"], s["exact"], s["near"]) == (5, 2, 1, 2)


def test_digits_are_kept_by_the_exact_hash():
    assert normalise("Nodule 3 cm.") != normalise("Nodule 5 cm.")
    dd = Deduplicator(near=False)
    assert dd.add("a", "A 3 cm nodule.").duplicate_of is None and dd.add("b", "A 5 cm nodule.").duplicate_of is None


def test_streaming_equals_batch_and_is_deterministic():
    rng = random.Random(1)
    texts = [(f"r{i}", _edit(BASE, rng.randint(0, 12), rng)) for i in range(60)]
    one = Deduplicator(threshold=0.8)
    a = [one.add(i, t) for i, t in texts]
    two = Deduplicator(threshold=0.8)
    b = two.add_many(texts[:25]) + two.add_many(texts[25:])
    c = Deduplicator(threshold=0.8).add_many(texts)
    assert a == b == c
    assert any(r.reason == "near" for r in a) and any(r.duplicate_of is None for r in a)


def test_preload_seeds_are_never_flagged_but_catch_copies():
    dd = Deduplicator()
    assert dd.preload([("seed-1", BASE)]) == 1
    r = dd.add("g1", BASE + " ")
    assert (r.duplicate_of, r.reason) == ("seed-1", "exact")
    assert dd.stats()["seen"] == 1 and dd.stats()["preloaded"] == 1


def test_check_does_not_insert_and_ids_must_be_unique():
    dd = Deduplicator()
    dd.add("a", BASE)
    assert dd.check("x", BASE).duplicate_of == "a"
    assert dd.check("y", "Completely different words here about a fractured rib.").duplicate_of is None
    assert len(dd) == 1
    with pytest.raises(ValueError, match="already added"):
        dd.add("a", "something else entirely, a new text")


def test_memory_window_bounds_the_near_index():
    rng = random.Random(2)
    dd = Deduplicator(max_items=10, threshold=0.9)
    words = "heart lungs pleural effusion nodule opacity spine rib fracture catheter granuloma cardiomegaly".split()
    for i in range(40):
        dd.add(f"r{i}", " ".join(rng.choice(words) for _ in range(30)) + f" case {i}")
    s = dd.stats()
    assert s["indexed"] <= 10 and s["evicted"] >= s["unique"] - 10


def test_a_copy_of_a_near_duplicate_is_an_exact_duplicate_of_it():
    dd = Deduplicator(threshold=0.7)
    near = BASE.replace("normal in size", "enlarged in size")
    r = dd.add_many([("a", BASE), ("b", near), ("c", near)])
    assert (r[1].reason, r[1].duplicate_of) == ("near", "a") and (r[2].reason, r[2].duplicate_of) == ("exact", "b")
