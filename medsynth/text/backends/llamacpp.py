"""llama.cpp backend (optional extra ``pip install "medsynth[llamacpp]"``): runs the embedded GGUF files directly,
quantised (Gemma 3 270M Q4_K_M, SmolLM2 Q4_1), without the de-quantised HF copy the transformers backend uses.

``model`` is a registry name (``gemma3-270m``: the chunk packages are joined once by their ``assemble`` into
``$MEDSYNTH_HOME/models/gguf/`` and sha256-checked; ``smollm2-135m-instruct``: the package's GGUF file) or a path to
a ``.gguf`` file. Prompts run one after another (llama.cpp's Python API has no batched sampling; ``batch_size`` is
ignored); consecutive prompts that share a prefix (few-shot headers) reuse its KV cache. Sampling is llama.cpp's
own top-k → top-p → temperature chain with ``min_p`` and typical sampling disabled, seeded per prompt from
(``params.seed``, prompt index), so the same prompt list and seed give the same completions. The model's sha256 is
the GGUF file's (a different model identity from the de-quantised HF weights: the numerics differ).

The first use of a llama.cpp build runs a 2-token generation in a subprocess (:func:`probe_native`): native builds
segfault on CPUs with AMX, and a crash must become an error with the rebuild line, not kill the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ...data.io import sha256_file
from ...exceptions import MissingDependencyError, ModelNotAvailableError
from ...registry import BACKENDS
from .base import Backend, Completion, GenParams

__all__ = ["LlamaCppBackend", "gguf_path", "probe_native"]


def gguf_path(model: str) -> tuple[Path, str]:
    """(GGUF file, sha256) of a registry model or a .gguf path; the sha256 is cached next to the file by (size, mtime)."""
    p = Path(os.path.expanduser(model))
    if p.suffix == ".gguf" and p.is_file():
        return p, _cached_sha(p)
    from ...registry import MODELS

    if model not in MODELS:
        MODELS.get(model)  # RecipeError with suggestions
    spec = MODELS.get(model)
    import importlib.util

    if importlib.util.find_spec(spec.package) is None:
        from ..models import _PIP

        raise ModelNotAvailableError(f"Model '{model}' is not installed. Install it with: {_PIP.get(spec.package, spec.package)}")
    from ...paths import models_dir

    d = models_dir() / "gguf" / spec.name
    done = d / "gguf.json"
    if done.exists():
        meta = json.loads(done.read_text())
        f = Path(meta["path"])
        if f.is_file() and f.stat().st_size == meta["size"]:
            return f, meta["sha256"]
    d.mkdir(parents=True, exist_ok=True)
    f, sha = spec.gguf_source(d)  # gemma: assembles into d (sha256-checked); smollm2: the package's own file
    done.write_text(json.dumps({"path": str(f), "size": f.stat().st_size, "sha256": sha}))
    return f, sha


def _cached_sha(p: Path) -> str:
    st = p.stat()
    side = p.with_name(p.name + ".sha256.json")
    if side.exists():
        try:
            m = json.loads(side.read_text())
            if m["size"] == st.st_size and m["mtime"] == st.st_mtime:
                return str(m["sha256"])
        except (ValueError, KeyError, OSError):
            pass
    sha = sha256_file(p)
    try:
        side.write_text(json.dumps({"size": st.st_size, "mtime": st.st_mtime, "sha256": sha}))
    except OSError:  # read-only location: recompute next time
        pass
    return sha


_REBUILD = ('CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON '
            '-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python')

_PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)
llm.create_completion("FINDINGS:", max_tokens=2, temperature=0.0)
print("ok")
"""


def probe_native(gguf: Path) -> None:
    """Run one tiny generation in a subprocess once per llama.cpp build: a build that crashes (e.g. the native AMX
    kernels segfault in ``llama_decode`` on some CPUs) becomes a clear error instead of killing the caller."""
    import subprocess
    import sys

    import llama_cpp

    lib = Path(llama_cpp.__file__).parent
    libs = sorted(lib.rglob("*.so*"))
    stamp = {"version": getattr(llama_cpp, "__version__", "?"), "libs": [(p.name, p.stat().st_size, p.stat().st_mtime) for p in libs]}
    key = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]
    from ...paths import home

    mark = home() / "cache" / f"llamacpp-ok-{key}"
    if mark.exists():
        return
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE, str(gguf)], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ModelNotAvailableError("llama.cpp did not finish a 2-token test generation in 300 s; the machine may be "
                                     "overloaded, or the build is broken. Retry, or rebuild: " + _REBUILD) from None
    if r.returncode != 0 or "ok" not in r.stdout:
        how = f"was killed by signal {-r.returncode}" if r.returncode < 0 else f"failed (exit code {r.returncode})"
        raise ModelNotAvailableError(f"The installed llama-cpp-python {how} during a 2-token test generation. Native builds "
                                     "crash on CPUs with AMX (ggml AMX kernels, ggml-org/llama.cpp#20824). Rebuild it without "
                                     "AMX: " + _REBUILD)
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(json.dumps(stamp))


@BACKENDS.register("llamacpp")
class LlamaCppBackend(Backend):
    name = "llamacpp"

    def __init__(self, model: str | None = None, n_ctx: int | None = None, n_threads: int | None = None,
                 n_batch: int = 512, probe: bool = True, **_: Any):
        try:
            import llama_cpp
        except ImportError as e:
            raise MissingDependencyError("llama-cpp-python", extra="llamacpp", purpose="the llamacpp backend") from e
        from ..models import DEFAULT_MODEL

        self._name = model or DEFAULT_MODEL
        self.path, self._sha = gguf_path(self._name)
        if probe:
            probe_native(self.path)
        ctx = n_ctx
        if ctx is None:
            from ...registry import MODELS

            spec = MODELS.get(self._name) if self._name in MODELS else None
            ctx = min(4096, spec.context_length) if spec else 4096
        threads = n_threads or int(os.environ.get("MEDSYNTH_THREADS", "0")) or None
        self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=ctx, n_threads=threads, n_threads_batch=threads,
                                   n_batch=n_batch, seed=0, verbose=False, logits_all=False)
        self._ctx = int(self.llm.n_ctx())

    @property
    def model_id(self) -> str:
        return self._name

    @property
    def model_sha256(self) -> str | None:
        return self._sha

    @property
    def context_length(self) -> int | None:
        return self._ctx

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        out: list[Completion] = []
        for i, p in enumerate(prompts):
            n = self.count_tokens(p)
            if n + params.max_new_tokens > self._ctx:
                out.append(Completion("", n, 0, "error", {"error": "prompt_too_long", "prompt_tokens": n, "context": self._ctx}))
                continue
            seed = int.from_bytes(hashlib.sha256(f"{params.seed}:{i}".encode()).digest()[:4], "big")
            greedy = params.temperature <= 0
            r = self.llm.create_completion(
                p, max_tokens=params.max_new_tokens, temperature=0.0 if greedy else params.temperature,
                top_k=1 if greedy else (params.top_k or 0), top_p=1.0 if greedy else (params.top_p or 1.0), min_p=0.0,
                typical_p=1.0, repeat_penalty=params.repetition_penalty or 1.0, stop=list(params.stop) or None, seed=seed)
            ch = r["choices"][0]
            usage = r.get("usage", {})
            text = ch.get("text", "")
            for s in params.stop:  # llama.cpp already cuts at stop strings; keep the contract explicit
                k = text.find(s)
                if k >= 0:
                    text = text[:k]
            fin = ch.get("finish_reason") or "stop"
            out.append(Completion(text, int(usage.get("prompt_tokens", n)), int(usage.get("completion_tokens", 0)),
                                  "length" if fin == "length" else "stop", {}))
        return out

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close() if hasattr(llm, "close") else None
            self.llm = None
