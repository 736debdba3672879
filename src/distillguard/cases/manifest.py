"""A pack's manifest: every file's SHA-256 and size, what the pack is about, who made it; and the Ed25519 signature
over the manifest's exact bytes, by the deployment's signing key (the one its intel objects are signed with).

Changing, adding or removing any file, or editing the manifest, shows: a file's hash or size no longer matches, a
file is not listed, or the signature no longer checks. A forger can re-sign a pack with a key of their own, so a
pack is trusted only when its signer is the deployment's known public key (``case verify --public-key``).

``manifest.sig`` holds the base64 of the 64-byte signature, so a reader without distillguard can check it with
OpenSSL (docs/cases.md shows how; ``public_key_pem`` in the manifest is the key in the form OpenSSL reads).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from distillguard.intel.signing import key_id, public_key_text

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PACK_VERSION = 1
_CHUNK = 1 << 20


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def build(
    directory: Path,
    names: list[str],
    *,
    subject: dict[str, str],
    created_at: str,
    generator: str,
    deployment: dict[str, str],
    public_key: Ed25519PublicKey,
) -> bytes:
    """The manifest of the files ``names`` in ``directory``, as the exact bytes that are written and signed."""
    files = {}
    for name in sorted(names):
        sha256, size = file_digest(directory / name)
        files[name] = {"sha256": sha256, "bytes": size}
    manifest = {
        "pack_version": PACK_VERSION,
        "subject": subject,
        "created_at": created_at,
        "generator": generator,
        "deployment": {
            **deployment,
            "public_key": public_key_text(public_key),
            "public_key_id": key_id(public_key),
            "public_key_pem": public_key_pem(public_key),
        },
        "signature": {"algorithm": "Ed25519", "file": SIGNATURE, "encoding": "base64", "over": MANIFEST},
        "files": files,
    }
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The contents of ``manifest.sig``: the signature over the manifest's bytes, base64, one line."""
    return base64.b64encode(key.sign(manifest)) + b"\n"


def signature_checks(manifest: bytes, signature_file: bytes, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(signature_file.strip(), validate=True), manifest)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse(manifest: bytes) -> dict[str, Any]:
    """The manifest as an object; ValueError when it is not one this code can read."""
    try:
        obj = orjson.loads(manifest)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if obj.get("pack_version") != PACK_VERSION:
        raise ValueError(f"pack_version {obj.get('pack_version')!r}; this distillguard reads version {PACK_VERSION}")
    files = obj.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("bytes"), int)
        for v in files.values()
    ):
        raise ValueError("`files` must map each file name to its sha256 and bytes")
    deployment = obj.get("deployment")
    if not isinstance(deployment, dict) or not isinstance(deployment.get("public_key"), str):
        raise ValueError("`deployment.public_key` is missing")
    return obj
