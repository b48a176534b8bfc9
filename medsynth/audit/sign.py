"""Ed25519 signatures over a run's manifest (``cryptography``).

The key pair lives in ``$MEDSYNTH_HOME/keys/`` (private key mode 0600, created on first use). ``manifest.sig``
holds the signature and the public key. Verification trusts only keys the user trusts: this machine's own key,
the public keys in ``$MEDSYNTH_HOME/keys/trusted/`` and keys given for one verification; a signature by any other
key fails (a key that signs its own manifest proves nothing about who made it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["sign_manifest", "verify_manifest", "public_key_pem", "load_or_create_key", "key_fingerprint", "trusted_keys"]

_KEY = "medsynth_ed25519.pem"


def load_or_create_key(home: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    d = Path(home) / "keys"
    d.mkdir(parents=True, exist_ok=True)
    p = d / _KEY
    if p.exists():
        try:
            key = serialization.load_pem_private_key(p.read_bytes(), password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            from ..exceptions import MedsynthError

            raise MedsynthError(f"{p}: not an Ed25519 private key (corrupt or replaced). Restore it from your backup; or move it "
                                "away to create a new key (runs signed with the old key then verify only with its public key, via --trust).")
        return key
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


def sign_manifest(manifest_path: Path, home: Path, sig_path: Path | None = None) -> dict[str, Any]:
    """Sign ``manifest_path`` with this machine's key into ``sig_path`` (default: ``manifest.sig`` beside it)."""
    key = load_or_create_key(home)
    data = Path(manifest_path).read_bytes()
    sig = {"algorithm": "Ed25519", "manifest": Path(manifest_path).name, "manifest_sha256": hashlib.sha256(data).hexdigest(),
           "signature": base64.b64encode(key.sign(data)).decode(), "public_key": _pub_pem(key)}
    Path(sig_path or Path(manifest_path).with_name("manifest.sig")).write_bytes(_canonical(sig))
    return sig


def _canonical(sig: dict[str, Any]) -> bytes:
    """The exact bytes medsynth writes for a signature file (so that any edited byte of it is detected)."""
    return json.dumps(sig, indent=2).encode("utf-8")


def key_fingerprint(pem: str) -> str:
    """sha256 of the raw public key bytes, as ``SHA256:<hex>`` (what a person compares when trusting a key)."""
    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key(pem.encode())
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def trusted_keys(home: Path | None, extra: list[Path] | None = None) -> dict[str, str]:
    """{fingerprint: where it is trusted from}: this machine's own key, every ``*.pem`` in
    ``$MEDSYNTH_HOME/keys/trusted/`` (``medsynth keys trust FILE`` puts them there) and the ``extra`` files given for
    one verification (``medsynth verify --trust FILE``). An unreadable key file raises ValueError naming it."""
    out: dict[str, str] = {}
    files: list[tuple[Path, str]] = []
    if home is not None:
        own = Path(home) / "keys" / "medsynth_ed25519.pub.pem"
        if own.exists():
            files.append((own, "this machine's key"))
        tdir = Path(home) / "keys" / "trusted"
        if tdir.is_dir():
            files += [(p, f"trusted key {p.name}") for p in sorted(tdir.glob("*.pem"))]
    files += [(Path(p), f"key given with --trust ({Path(p).name})") for p in extra or []]
    for p, why in files:
        try:
            out.setdefault(key_fingerprint(p.read_text(encoding="utf-8")), why)
        except (OSError, ValueError, UnicodeDecodeError, TypeError):
            raise ValueError(f"{p}: not a readable PEM public key. Export one with `medsynth keys show --pem`.") from None
    return out


def verify_manifest(manifest_path: Path, sig_path: Path, home: Path | None, trust: list[Path] | None = None) -> tuple[bool, str]:
    """Check ``manifest.sig`` against ``manifest.json``. Valid only if the signature verifies **and** its key is one the
    user trusts (see :func:`trusted_keys`): a run re-signed with any other key fails, whatever the key says.
    Returns ``(ok, what was checked / why it failed)``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        raw = Path(sig_path).read_bytes()
        sig = json.loads(raw.decode("utf-8"))
        embedded = sig["public_key"]
        signature = base64.b64decode(sig["signature"], validate=True)
        fp = key_fingerprint(embedded)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
        return False, "unreadable signature file"
    if raw != _canonical(sig):
        return False, "manifest.sig was edited (it is not byte for byte what medsynth wrote)"
    if sig.get("manifest_sha256") != hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest():
        return False, "manifest.json does not have the sha256 recorded in manifest.sig"
    pub = serialization.load_pem_public_key(embedded.encode())
    try:
        pub.verify(signature, Path(manifest_path).read_bytes())  # type: ignore[union-attr]
    except InvalidSignature:
        return False, f"the Ed25519 signature does not verify (key {fp})"
    trusted = trusted_keys(home, trust)
    if fp not in trusted:
        return False, (f"signed with key {fp}, which you do not trust (not this machine's key, not in "
                       f"{Path(home) / 'keys' / 'trusted' if home else 'keys/trusted'}). If you know the signer, verify with "
                       "`--trust SIGNER_KEY.pem` or add it with `medsynth keys trust SIGNER_KEY.pem`")
    return True, f"{trusted[fp]}, {fp}"
