"""Ed25519 signatures on every object a member shares, so a relay (the hub, another member) cannot forge or alter a
member's report.

Each object carries its signature in the ``distillguard-signature`` property extension: the signer's identity, the
id of its public key, and the signature over the object's canonical JSON *without* that extension (keys sorted, no
whitespace: what ``orjson`` writes with ``OPT_SORT_KEYS``). Objects are signed one by one rather than as a bundle
because TAXII stores and serves objects, not bundles: a page of objects from the hub can be checked as it comes.
Members exchange public keys out of band, as with the group key; ``intel keygen`` prints this member's.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from distillguard.intel.vocabulary import SIGNATURE_EXT

PUBLIC_PREFIX = "ed25519:"


class SignatureError(ValueError):
    """An object is unsigned, signed by someone we do not trust for it, or altered since it was signed."""


def canonical(obj: dict[str, Any]) -> bytes:
    """The bytes that are signed: the object without its signature extension, keys sorted, compact."""
    unsigned = dict(obj)
    extensions = dict(unsigned.get("extensions") or {})
    extensions.pop(SIGNATURE_EXT.id, None)
    if extensions:
        unsigned["extensions"] = extensions
    else:
        unsigned.pop("extensions", None)
    return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key as ``intel keygen`` prints it (``ed25519:`` + base64 of the 32 raw bytes)."""
    body = text.strip().removeprefix(PUBLIC_PREFIX)
    try:
        raw = base64.b64decode(body, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise SignatureError(f"not an Ed25519 public key: {text[:24]!r}…") from exc


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    identity_id: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with this member's signature extension."""
        signed = copy.deepcopy(obj)
        signature = self.private_key.sign(canonical(signed))
        extensions = signed.setdefault("extensions", {})
        extensions[SIGNATURE_EXT.id] = {
            "extension_type": "property-extension",
            "signer": self.identity_id,
            "public_key_id": key_id(self.public_key),
            "ed25519": base64.b64encode(signature).decode(),
        }
        return signed


def signer_of(obj: dict[str, Any]) -> str | None:
    ext = (obj.get("extensions") or {}).get(SIGNATURE_EXT.id)
    return ext.get("signer") if isinstance(ext, dict) else None


def verify(obj: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> str:
    """The identity that signed ``obj``, if its signature checks under that identity's known key; else raises.

    ``keys`` maps each trusted member's identity id to its public key. An object that names a creator
    (``created_by_ref``) must be signed by that creator: a member cannot sign reports in another's name.
    """
    ext = (obj.get("extensions") or {}).get(SIGNATURE_EXT.id)
    if not isinstance(ext, dict):
        raise SignatureError(f"{obj.get('id')}: unsigned")
    signer = ext.get("signer")
    key = keys.get(signer) if isinstance(signer, str) else None
    if key is None:
        raise SignatureError(f"{obj.get('id')}: signed by {signer!r}, which is not a trusted member")
    creator = obj.get("created_by_ref")
    if creator is not None and creator != signer:
        raise SignatureError(f"{obj.get('id')}: created by {creator} but signed by {signer}")
    try:
        key.verify(base64.b64decode(str(ext.get("ed25519", "")), validate=True), canonical(obj))
    except (InvalidSignature, ValueError):
        raise SignatureError(f"{obj.get('id')}: the signature does not match the content (altered or forged)") from None
    return str(signer)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """This member's signing key (PEM, mode 0600), made on first use."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            data = path.read_bytes()
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            return key
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SignatureError(f"{path} does not hold an Ed25519 private key")
    return loaded
