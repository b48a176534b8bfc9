"""Classifiers for rows, text (MiniLM embeddings / fine-tuned encoder) and images; bad input fails before training."""

import numpy as np
import pytest

from medsynth.data.records import Record
from medsynth.exceptions import DataFormatError, RecipeError
from medsynth.train import ClassifierConfig, DPConfig, TrainedModel, fit_classifier

from .conftest import row_records, text_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # restored after the module, not set at import


def test_row_mlp_learns_saves_and_loads(tmp_path):
    tr, te = row_records(400), row_records(150, seed=1, prefix="e")
    m = fit_classifier(tr, ClassifierConfig(epochs=8, lr=3e-3), evals={"test": te})
    ev = m.evaluate(te)
    assert m.kind == "mlp" and m.task == "multiclass" and ev["accuracy"] > 0.85 and ev["auroc"] > 0.9
    m2 = TrainedModel.load(m.save(tmp_path / "m"))
    assert np.allclose(m2.predict_proba(te), m.predict_proba(te), atol=1e-6)
    assert m.privacy is None


def test_row_mlp_with_dp_states_epsilon_and_what_it_covers():
    tr = row_records(400)
    m = fit_classifier(tr, ClassifierConfig(epochs=4, batch_size=64, lr=1e-2), dp=DPConfig(epsilon=3, delta=1e-4))
    assert m.privacy["epsilon_rdp"] <= 3 and m.privacy["epsilon_prv"] <= 3 and "scaling" in m.privacy["not_covered"]
    b = fit_classifier(tr, ClassifierConfig(epochs=1), dp=DPConfig(epsilon=3, delta=1e-4, feature_bounds={"a": (-4, 4), "b": (-4, 4)}))
    assert "not_covered" not in b.privacy and b.info["scaling_from_private_data"] is False


def test_bad_input_is_rejected_before_training():
    tr = row_records(50)
    one = [r.model_copy(update={"labels": ["pos"]}) for r in tr]
    with pytest.raises(DataFormatError, match="single class"):
        fit_classifier(one)
    nan = [r.model_copy(deep=True) for r in tr]
    nan[3].values["a"] = float("nan")
    with pytest.raises(DataFormatError, match="NaN"):
        fit_classifier(nan)
    unseen = [Record(id="x", kind="row", values={"a": 0.0, "b": 0.0, "c": "x"}, labels=["other"])]
    with pytest.raises(DataFormatError, match="absent from the training set"):
        fit_classifier(tr, evals={"test": unseen})
    with pytest.raises(RecipeError, match="1/n"):
        fit_classifier(tr, dp=DPConfig(epsilon=1, delta=0.05))
    with pytest.raises(DataFormatError, match="one kind"):
        fit_classifier(tr + text_records(5))
    with pytest.raises(RecipeError, match="trains on text"):
        fit_classifier(tr, ClassifierConfig(model="text_embed"))


def test_multilabel_text_embedding_classifier():
    recs = text_records(60)
    for i, r in enumerate(recs):
        if i % 5 == 0:
            r.labels = ["effusion", "opacity"]
    m = fit_classifier(recs, ClassifierConfig(model="text_embed", epochs=30, lr=1e-2, hidden=[]))
    assert m.task == "multilabel"
    ev = m.evaluate(recs)
    assert ev["micro_f1"] > 0.8 and "auroc" in ev and "macro_f1" in ev


def test_finetuned_encoder_with_dp_freezes_lower_layers(tiny_backbone):
    recs = text_records(40)
    cfg = ClassifierConfig(model="text_finetune", backbone=tiny_backbone, max_length=16, epochs=2, batch_size=10, lr=5e-3, train_layers=1)
    m = fit_classifier(recs, cfg, dp=DPConfig(epsilon=5, delta=1e-3))
    g = m.privacy["guard"]
    assert g["frozen_parameters"] > 0 and g["trainable_changed"] and g["frozen_unchanged"]
    assert m.privacy["grad_sample_mode"] == "ghost"
    P = m.predict_proba(recs[:3])
    assert P.shape == (3, len(m.labels)) and np.allclose(P.sum(1), 1, atol=1e-5)


def test_image_cnn_on_png_and_npy(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    recs = []
    for i in range(40):
        bright = i % 2 == 0
        a = (rng.random((20, 20)) * 0.3 + (0.7 if bright else 0.0)).clip(0, 1)
        if i % 4 < 2:
            p = tmp_path / f"im{i}.png"
            Image.fromarray((a * 255).astype("uint8")).save(p)
        else:
            p = tmp_path / f"im{i}.npy"
            np.save(p, a)
        recs.append(Record(id=f"i{i}", kind="image", image_path=str(p), labels=["bright" if bright else "dark"]))
    m = fit_classifier(recs, ClassifierConfig(epochs=6, lr=1e-2, image_size=16, batch_size=8))
    assert m.kind == "cnn" and m.evaluate(recs)["accuracy"] > 0.8
    m = fit_classifier(recs, ClassifierConfig(epochs=1, image_size=16, batch_size=8), dp=DPConfig(epsilon=5, delta=1e-3))
    assert m.privacy["guard"]["trainable_changed"]
