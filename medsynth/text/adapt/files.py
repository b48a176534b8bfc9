"""The adapter folder: peft's ``adapter_config.json`` + ``adapter_model.safetensors`` and ``medsynth_adapter.json``
(method, base model name + sha256, sha256 of every file, ``adapter_sha256`` over them, DP ε/δ, canaries,
perplexities). :func:`save_adapter` writes it; :func:`resolve_adapter` finds and verifies it from a path or
``"step:<name>"``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ...data.io import sha256_file
from ...exceptions import ModelNotAvailableError
from ...paths import find_step_dir

__all__ = ["save_adapter", "resolve_adapter", "ADAPTER_MANIFEST"]

ADAPTER_MANIFEST = "medsynth_adapter.json"


def _files_sha(d: Path) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): sha256_file(p) for p in sorted(d.rglob("*")) if p.is_file() and p.name != ADAPTER_MANIFEST}


def _combined(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def save_adapter(peft_model: Any, out_dir: str | Path, manifest: dict[str, Any] | None = None) -> tuple[Path, str]:
    """Save the peft adapter (safetensors) + ``medsynth_adapter.json``; returns (folder, adapter_sha256)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out), safe_serialization=True)
    files = _files_sha(out)
    sha = _combined(files)
    man = {**(manifest or {}), "files": files, "adapter_sha256": sha}
    (out / ADAPTER_MANIFEST).write_text(json.dumps(man, indent=2, default=str), encoding="utf-8")
    return out, sha


def resolve_adapter(ref: str, run_dir: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Folder and verified manifest of an adapter given as a folder path or ``"step:<adapt step name>"``.

    ``step:NAME`` is looked up as ``<run_dir>/steps/NN_NAME/adapter``. Files are re-hashed against the manifest; an
    adapter folder without a manifest (any peft adapter) gets its sha256 computed from its files."""
    if ref.startswith("step:"):
        name = ref[5:]
        if run_dir is None:
            raise ModelNotAvailableError(f"adapter '{ref}' names a step of the current run, but no run directory was given. "
                                         "Pass run_dir= to the backend (the generate/audit step passes ctx.run_dir), "
                                         "or give the adapter folder's path.")
        step = find_step_dir(run_dir, name)
        hits = [step / "adapter"] if step is not None and (step / "adapter").is_dir() else []
        if not hits:
            raise ModelNotAvailableError(f"no adapter from a step named '{name}' in {run_dir}/steps. Run the `adapt` step "
                                         f"named '{name}' before this one, or fix the name.")
        path = hits[0]
    else:
        path = Path(ref).expanduser()
        if (path / "adapter" / "adapter_config.json").exists():
            path = path / "adapter"
    if not (path / "adapter_config.json").exists():
        raise ModelNotAvailableError(f"{path} is not a peft adapter folder (no adapter_config.json). Give the folder an "
                                     "`adapt` step wrote (steps/NN_adapt/adapter) or `step:<adapt step name>`.")
    mp = path / ADAPTER_MANIFEST
    files = _files_sha(path)
    if mp.exists():
        manifest = json.loads(mp.read_text(encoding="utf-8"))
        if files != manifest.get("files"):
            changed = sorted(set(files.items()) ^ set((manifest.get("files") or {}).items()))
            raise ModelNotAvailableError(f"the adapter at {path} does not match its {ADAPTER_MANIFEST} "
                                         f"({len(changed)} file hash(es) differ, e.g. {changed[0][0] if changed else '?'}). "
                                         "It was modified after training: re-run the adapt step.")
    else:
        manifest = {"files": files, "adapter_sha256": _combined(files)}
    return path, manifest
