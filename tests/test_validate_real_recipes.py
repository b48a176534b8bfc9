from pathlib import Path

import pytest
import yaml

from medsynth.exceptions import RecipeError
from medsynth.recipe.schema import load_recipe
from medsynth.registry import STRATEGIES
from medsynth.steps.text import GenerateConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yaml")))
def test_shipped_recipes_validate(recipe, medsynth_home):
    """On a fresh home (as after install): the developer's own budgets, spent by earlier runs, do not count."""
    load_recipe(recipe)


def test_broken_quickstart_lists_every_problem(tmp_path):
    raw = yaml.safe_load((ROOT / "recipes/quickstart.yaml").read_text())
    gen = next(s for s in raw["steps"] if s["type"] == "generate")
    gen["model"] = "gpt-17"
    gen["strategies"] = ["label", "telepathy"]
    gen["temprature"] = 0.7
    raw["steps"].append({"type": "load", "path": "nowhere/notes.jsonl"})
    raw["steps"].append({"type": "audit", "audits": ["dcr", "vibes"], "private": "private"})
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError) as ei:
        load_recipe(p)
    msg = str(ei.value)
    assert "temprature" in msg and "did you mean 'temperature'" in msg
    assert "telepathy" in msg
    # schema problems are reported first; fix them and the resource checks report the rest
    gen.pop("temprature")
    gen["strategies"] = ["label"]
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError) as ei:
        load_recipe(p)
    locs = " ".join(loc for loc, _ in ei.value.problems)
    assert "generate).model" in locs and "load).path" in locs and "audit).audits" in locs


def test_every_registered_strategy_is_accepted_and_unknown_ones_are_named():
    from pydantic import ValidationError

    names = STRATEGIES.names()
    assert {"label", "attributes", "verbalizer", "fewshot", "feedback", "entity_first"} <= set(names)
    for name in names:
        assert GenerateConfig(strategies=[name]).strategy_names() == [name]
    with pytest.raises(ValidationError) as ei:
        GenerateConfig(strategies=["labl"])
    assert "did you mean 'label'" in str(ei.value)
    with pytest.raises(ValidationError) as ei:
        GenerateConfig(strategies=["label", "label"])
    assert "listed twice" in str(ei.value)
