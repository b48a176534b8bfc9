"""``eval:`` is one object in every step that evaluates on held-out data, with ``real:`` naming the dataset(s)."""

import warnings

import pytest

from medsynth.recipe.schema import load_recipe
from medsynth.registry import STEPS

EVAL_STEPS = {"ldm_train": {}, "ldm_sample": {}, "modality_impute": {"source": "a", "target": "b"}, "train": {}}


@pytest.mark.parametrize("stype", sorted(EVAL_STEPS))
def test_eval_is_an_object_and_a_name_is_shorthand_for_it(stype):
    cls = STEPS.get(stype).Config
    full = cls.model_validate({"type": stype, **EVAL_STEPS[stype], "eval": {"real": "held_out"}})
    short = cls.model_validate({"type": stype, **EVAL_STEPS[stype], "eval": "held_out"})
    assert full.eval.real == "held_out"
    assert short.eval == full.eval


def test_train_eval_takes_several_datasets():
    cls = STEPS.get("train").Config
    c = cls.model_validate({"type": "train", "eval": ["text_test", "row_test"]})
    assert c.eval.real == ["text_test", "row_test"] and c.eval_names == ["text_test", "row_test"]
    assert cls.model_validate({"type": "train"}).eval_names == []


def test_old_eval_options_key_is_merged_with_a_deprecation_message():
    cls = STEPS.get("modality_impute").Config
    with pytest.warns(FutureWarning, match="eval_options.*deprecated.*under `eval:`"):
        c = cls.model_validate({"type": "modality_impute", "source": "a", "target": "b", "eval": "held_out",
                                "eval_options": {"unet_steps": 4, "feature_steps": 10}})
    assert (c.eval.real, c.eval.unet_steps, c.eval.feature_steps) == ("held_out", 4, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new form warns about nothing
        cls.model_validate({"type": "modality_impute", "source": "a", "target": "b", "eval": {"real": "held_out", "unet_steps": 4}})


def test_eval_without_real_is_a_recipe_error_naming_the_key(tmp_path):
    from medsynth.exceptions import RecipeError

    raw = {"name": "r", "seed": 0, "steps": [{"type": "load", "name": "data", "path": str(tmp_path / "x.jsonl")},
                                             {"type": "train", "input": "data", "eval": {"unet_steps": 4}}]}
    with pytest.raises(RecipeError) as e:
        load_recipe(raw, check_resources=False)
    assert "eval" in str(e.value) and "real" in str(e.value)
