import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def medsynth_home(tmp_path, monkeypatch):
    """An isolated MEDSYNTH_HOME (keys, caches, budget ledger) for one test; the installed models and PHI tagger are
    visible through a symlink."""
    from tests.helpers import isolated_home

    home = isolated_home(tmp_path / "home")
    monkeypatch.setenv("MEDSYNTH_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest single-threaded, and the CPU is shared; restored after the module.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
