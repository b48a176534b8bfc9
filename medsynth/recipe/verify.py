"""``medsynth verify RUN_DIR``: re-hash every artifact against manifest.json and check the manifest's signature."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..audit.sign import verify_manifest
from ..data.io import sha256_file
from ..paths import home as medsynth_home

__all__ = ["VerifyResult", "verify_run"]


@dataclass
class VerifyResult:
    ok: bool
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    signature: str = "absent"  # valid | invalid | absent
    key_source: str = ""


def verify_run(run_dir: str | Path, home: str | Path | None = None, require_signature: bool = True) -> VerifyResult:
    run_dir = Path(run_dir)
    res = VerifyResult(ok=False)
    mpath = run_dir / "manifest.json"
    if not mpath.exists():
        res.problems.append("manifest.json is missing: this is not a finished medsynth run directory (or it was tampered with)")
        return res
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError):
        res.problems.append("manifest.json is not a valid medsynth manifest")
        return res
    for rel, meta in files.items():
        p = run_dir / rel
        if not p.exists():
            res.problems.append(f"missing file: {rel}")
            continue
        res.checked += 1
        if p.stat().st_size != meta.get("size") or sha256_file(p) != meta.get("sha256"):
            res.problems.append(f"changed file: {rel} (sha256 differs from the manifest)")
    for p in sorted(run_dir.rglob("*")):
        if p.is_file():
            rel = p.relative_to(run_dir).as_posix()
            if rel not in files and rel not in ("manifest.json", "manifest.sig", ".lock") and not rel.endswith(("-wal", "-shm")):
                res.problems.append(f"file not in the manifest: {rel}")
    sig = run_dir / "manifest.sig"
    if not sig.exists():
        res.signature = "absent"
        if require_signature:
            res.problems.append("manifest.sig is missing: the run is not signed")
    else:
        ok, source = verify_manifest(mpath, sig, Path(home) if home else medsynth_home())
        res.signature = "valid" if ok else "invalid"
        res.key_source = source
        if not ok:
            res.problems.append("the manifest's Ed25519 signature does not verify: manifest.json or manifest.sig was changed")
    res.ok = not res.problems
    return res
