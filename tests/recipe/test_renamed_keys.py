"""One spelling for counts: ``n``. The old keys still read for one release, with a FutureWarning naming the new key;
giving both is an error."""

from __future__ import annotations

import pytest

from medsynth.audit.extraction import ExtractionPolicy
from medsynth.steps.data import SelectConfig
from medsynth.steps.tabular import TableConfig
from medsynth.steps.text import GenerateConfig


@pytest.mark.parametrize(("cls", "extra", "old"), [
    (GenerateConfig, {}, "n_records"),
    (SelectConfig, {}, "sample"),
    (TableConfig, {"path": "t.csv"}, "limit"),
    (ExtractionPolicy, {}, "n_records"),
])
def test_old_count_keys_read_with_a_deprecation_naming_n(cls, extra, old):
    new = cls.model_validate({**extra, "n": 7})
    with pytest.warns(FutureWarning, match=rf"`{old}:` is deprecated .* write `n:`"):
        legacy = cls.model_validate({**extra, old: 7})
    assert new.n == legacy.n == 7
    assert new.model_dump() == legacy.model_dump()
    with pytest.raises(ValueError, match=rf"give `n:` only \(`{old}:` is its old name"):
        cls.model_validate({**extra, "n": 7, old: 8})


def test_recipe_overrides_take_n_and_the_old_key():
    from medsynth.recipe.schema import load_recipe

    r = load_recipe({"name": "q", "steps": [{"type": "generate", "n": 100}]}, overrides=["steps.generate.n=12"], check_resources=False)
    assert r.steps[0].config.n == 12
    with pytest.warns(FutureWarning, match="write `n:`"):
        r = load_recipe({"name": "q", "steps": [{"type": "generate", "n_records": 100}]}, check_resources=False)
    assert r.steps[0].config.n == 100
