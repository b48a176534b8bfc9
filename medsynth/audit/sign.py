"""Ed25519 signatures over a run's manifest (``cryptography``).

The key pair lives in ``$MEDSYNTH_HOME/keys/`` (private key mode 0600, created on first use). ``manifest.sig``
holds the signature and the public key; verification uses the trusted key of this machine when it matches, and
otherwise says that only the key embedded in the signature file was used (integrity, not origin).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["sign_manifest", "verify_manifest", "public_key_pem", "load_or_create_key"]

_KEY = "medsynth_ed25519.pem"


def load_or_create_key(home: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    d = Path(home) / "keys"
    d.mkdir(parents=True, exist_ok=True)
    p = d / _KEY
    if p.exists():
        return serialization.load_pem_private_key(p.read_bytes(), password=None)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, p)
    (d / "medsynth_ed25519.pub.pem").write_bytes(_pub_pem(key).encode())
    return key


def _pub_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_pem(home: Path) -> str:
    return _pub_pem(load_or_create_key(home))


def sign_manifest(manifest_path: Path, home: Path) -> dict[str, Any]:
    key = load_or_create_key(home)
    data = Path(manifest_path).read_bytes()
    sig = {"algorithm": "Ed25519", "manifest": Path(manifest_path).name, "manifest_sha256": hashlib.sha256(data).hexdigest(),
           "signature": base64.b64encode(key.sign(data)).decode(), "public_key": _pub_pem(key)}
    Path(manifest_path).with_name("manifest.sig").write_bytes(_canonical(sig))
    return sig


def _canonical(sig: dict[str, Any]) -> bytes:
    """The exact bytes medsynth writes for a signature file (so that any edited byte of it is detected)."""
    return json.dumps(sig, indent=2).encode("utf-8")


def verify_manifest(manifest_path: Path, sig_path: Path, home: Path | None) -> tuple[bool, str]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        raw = Path(sig_path).read_bytes()
        sig = json.loads(raw.decode("utf-8"))
        embedded = sig["public_key"]
        signature = base64.b64decode(sig["signature"], validate=True)
    except (ValueError, KeyError, UnicodeDecodeError):
        return False, "unreadable signature file"
    if raw != _canonical(sig):
        return False, "manifest.sig was edited (it is not byte for byte what medsynth wrote)"
    if sig.get("manifest_sha256") != hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest():
        return False, "manifest.json does not have the sha256 recorded in manifest.sig"
    source = "key embedded in manifest.sig (proves integrity, not origin)"
    trusted = Path(home) / "keys" / "medsynth_ed25519.pub.pem" if home else None
    if trusted and trusted.exists():
        if trusted.read_text().strip() == embedded.strip():
            source = f"trusted key of this machine ({trusted})"
        else:
            source = "key embedded in manifest.sig; it is NOT this machine's key (signed elsewhere)"
    pub = serialization.load_pem_public_key(embedded.encode())
    try:
        pub.verify(signature, Path(manifest_path).read_bytes())  # type: ignore[union-attr]
    except InvalidSignature:
        return False, source
    return True, source
