"""``medsynth verify RUN_DIR``: re-hash every artifact against manifest.json and check the manifest's signature."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..audit.sign import verify_manifest
from ..data.io import sha256_file
from ..paths import home as medsynth_home
from .release import SIGN_OFF_FILES
from .rundir import MANIFEST_FILES

__all__ = ["VerifyResult", "verify_run"]


@dataclass
class VerifyResult:
    ok: bool
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    signature: str = "absent"  # valid | invalid | absent
    key_source: str = ""
    kind: str = "run"  # run | release
    sign_off: str = ""  # the privacy officer's decision on a release bundle, when present and valid


def verify_run(run_dir: str | Path, home: str | Path | None = None, require_signature: bool = True,
               trust: list[Path] | None = None) -> VerifyResult:
    """Re-hash every file of ``run_dir`` against its manifest (every file must be listed, whatever its name, except the
    manifest and its signature) and check the signature with the keys the user trusts (``trust``: extra public-key PEM
    files for this call)."""
    run_dir = Path(run_dir)
    res = VerifyResult(ok=False)
    if not run_dir.is_dir():
        res.problems.append(f"{run_dir} is not a directory: give the folder of a medsynth run")
        return res
    mpath = run_dir / "manifest.json"
    if not mpath.exists():
        res.problems.append("manifest.json is missing: this is not a finished medsynth run directory (or it was tampered with)")
        return res
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not all(isinstance(m, dict) for m in files.values()):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        res.problems.append("manifest.json is not a valid medsynth manifest (no mapping `files` of path -> {sha256, size})")
        return res
    if not files:
        res.problems.append("manifest.json lists no files: a medsynth run always has some (it was emptied or tampered with)")
    res.kind = "release" if manifest.get("kind") == "release" else "run"
    unlisted = set(MANIFEST_FILES) | (set(SIGN_OFF_FILES) if res.kind == "release" else set())
    root = run_dir.resolve()
    for rel, meta in files.items():
        p = run_dir / rel
        if not (run_dir / rel).resolve().is_relative_to(root) or Path(rel).is_absolute():
            res.problems.append(f"manifest entry points outside the run directory: {rel}")
            continue
        if not p.is_file():
            res.problems.append(f"missing file: {rel}")
            continue
        res.checked += 1
        if p.stat().st_size != meta.get("size") or sha256_file(p) != meta.get("sha256"):
            res.problems.append(f"changed file: {rel} (sha256 differs from the manifest)")
    for p in sorted(run_dir.rglob("*")):
        if p.is_file():
            rel = p.relative_to(run_dir).as_posix()
            if rel not in files and rel not in unlisted:
                res.problems.append(f"file not in the manifest: {rel}")
    sig = run_dir / "manifest.sig"
    if not sig.exists():
        res.signature = "absent"
        if require_signature:
            res.problems.append("manifest.sig is missing: the run is not signed")
    else:
        try:
            ok, source = verify_manifest(mpath, sig, Path(home) if home else medsynth_home(), trust)
        except ValueError as e:  # a --trust file that is not a key
            ok, source = False, str(e)
        res.signature = "valid" if ok else "invalid"
        res.key_source = source
        if not ok:
            res.problems.append(f"signature not accepted: {source}")
    if res.kind == "release" and (run_dir / "sign_off.json").exists():
        _check_sign_off(run_dir, mpath, res, Path(home) if home else medsynth_home(), trust)
    res.ok = not res.problems
    return res


def _check_sign_off(bundle: Path, mpath: Path, res: VerifyResult, home: Path, trust: list[Path] | None) -> None:
    """The sign-off addendum: signed by a trusted key and bound to this exact manifest."""
    import hashlib

    so = bundle / "sign_off.json"
    if not (bundle / "sign_off.sig").exists():
        res.problems.append("sign_off.json has no sign_off.sig: the decision is not signed")
        return
    try:
        ok, source = verify_manifest(so, bundle / "sign_off.sig", home, trust)
    except ValueError as e:
        ok, source = False, str(e)
    if not ok:
        res.problems.append(f"sign-off signature not accepted: {source}")
        return
    try:
        block = json.loads(so.read_text(encoding="utf-8"))
        bound = block["manifest_sha256"]
    except (ValueError, KeyError, TypeError):
        res.problems.append("sign_off.json is not a medsynth sign-off")
        return
    if bound != hashlib.sha256(mpath.read_bytes()).hexdigest():
        res.problems.append("the sign-off was given for a different manifest.json (the bundle changed after it was signed off)")
        return
    a = block.get("approver", {})
    res.sign_off = f"{block.get('decision')} by {a.get('name')} ({a.get('role')}) on {block.get('date')}, key {a.get('key_fingerprint')} ({source})"
