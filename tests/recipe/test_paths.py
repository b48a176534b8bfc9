"""Finding a step's folder in a run dir by its exact name (the run layer's one way to do it)."""

from __future__ import annotations

import pytest

from medsynth.paths import find_step_dir, step_folder_name


def test_a_step_is_found_by_its_whole_name_only(tmp_path):
    for idx, name in ((1, "pre_scrub"), (3, "scrub"), (4, "export")):  # "*_scrub" would find 01_pre_scrub first
        (tmp_path / "steps" / step_folder_name(idx, name)).mkdir(parents=True)
    assert find_step_dir(tmp_path, "scrub") == tmp_path / "steps" / "03_scrub"
    assert find_step_dir(tmp_path, "pre_scrub") == tmp_path / "steps" / "01_pre_scrub"
    assert find_step_dir(tmp_path, "crub") is None and find_step_dir(tmp_path, "train") is None
    assert find_step_dir(tmp_path / "no_run_here", "scrub") is None


def test_a_name_that_is_a_path_is_refused(tmp_path):
    (tmp_path / "steps").mkdir()
    with pytest.raises(ValueError) as e:
        find_step_dir(tmp_path, "../../etc")
    assert "step name" in str(e.value)
