"""Checking an evidence pack: every listed file is there with its hash and size, nothing else is, and the manifest's
signature checks — under the deployment's known key when the verifier has it, else only under the key the
manifest itself names (which proves the pack is self-consistent, not who made it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from distillguard.cases.manifest import MANIFEST, SIGNATURE, file_digest, parse, signature_checks
from distillguard.intel.signing import SignatureError, key_id, parse_public_key


@dataclass(frozen=True, slots=True)
class Finding:
    item: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "ok": self.ok, "detail": self.detail}


@dataclass
class Verification:
    directory: Path
    findings: list[Finding] = field(default_factory=list)
    # Whether the signer was checked against a key the verifier trusts (not only the manifest's own).
    trusted: bool = False
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    def add(self, item: str, ok: bool, detail: str) -> None:
        self.findings.append(Finding(item, ok, detail))

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "FAILED: the pack was altered, is incomplete, or was not signed by the expected key"
        if self.trusted:
            return "OK: intact, and signed by the deployment's key"
        return (
            "SELF-CONSISTENT ONLY: intact under the key the manifest names, but that key was not checked against the "
            "deployment's (anyone can re-sign a pack with a key of their own); give --public-key to check the signer"
        )

    def to_json(self) -> dict[str, Any]:
        m = self.manifest or {}
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "trusted_signer": self.trusted,
            "verdict": self.verdict,
            "subject": m.get("subject"),
            "created_at": m.get("created_at"),
            "deployment": {k: v for k, v in (m.get("deployment") or {}).items() if k != "public_key_pem"} or None,
            "findings": [f.to_json() for f in self.findings],
        }


def _same_key(a: Ed25519PublicKey, b: Ed25519PublicKey) -> bool:
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return a.public_bytes(*raw) == b.public_bytes(*raw)


def _safe_name(name: str) -> bool:
    # A listed name is a plain relative path inside the pack: no absolute paths, no "..", no backslashes.
    path = PurePosixPath(name)
    return bool(name) and "\\" not in name and not path.is_absolute() and ".." not in path.parts


def _signature(
    v: Verification, manifest: bytes, manifest_obj: dict[str, Any], trusted: Ed25519PublicKey | None
) -> None:
    signature_path = v.directory / SIGNATURE
    if not signature_path.is_file():
        v.add(SIGNATURE, False, "missing: the pack is unsigned")
        return
    try:
        named = parse_public_key(manifest_obj["deployment"]["public_key"])
    except SignatureError as exc:
        v.add(SIGNATURE, False, f"the manifest's public key is unreadable: {exc}")
        return
    if not signature_checks(manifest, signature_path.read_bytes(), named):
        v.add(SIGNATURE, False, "does not match the manifest: the manifest or its signature was altered")
        return
    v.add(SIGNATURE, True, f"checks under the key the manifest names ({key_id(named)})")
    if trusted is None:
        return
    if not _same_key(named, trusted):
        v.add("signer", False, f"signed by key {key_id(named)}, not by the deployment's key {key_id(trusted)}")
        return
    v.trusted = True
    v.add("signer", True, f"the deployment's key {key_id(trusted)}")


def _files(v: Verification, listed: dict[str, Any]) -> None:
    for name in sorted(listed):
        entry = listed[name]
        path = v.directory / name
        if not _safe_name(name):
            v.add(name, False, "not a file name inside the pack (absolute, '..' or backslash)")
        elif path.is_symlink() or not path.is_file():
            v.add(name, False, "missing (listed in the manifest)" if not path.exists() else "not a regular file")
        else:
            sha256, size = file_digest(path)
            if size != entry["bytes"]:
                v.add(name, False, f"size {size} bytes, the manifest says {entry['bytes']}: the file was changed")
            elif sha256 != entry["sha256"]:
                v.add(name, False, f"SHA-256 {sha256[:16]}…, the manifest says {entry['sha256'][:16]}…: changed")
            else:
                v.add(name, True, f"SHA-256 {sha256[:16]}…, {size} bytes")
    expected = {str(PurePosixPath(n)) for n in listed} | {MANIFEST, SIGNATURE}
    parents = {str(p) for n in expected for p in PurePosixPath(n).parents if str(p) != "."}
    for path in sorted(v.directory.rglob("*")):
        name = path.relative_to(v.directory).as_posix()
        if name in expected or (path.is_dir() and not path.is_symlink() and name in parents):
            continue
        v.add(name, False, "not in the manifest: added after the pack was signed")


def verify_pack(directory: Path, trusted: Ed25519PublicKey | None = None) -> Verification:
    """Check the pack in ``directory``; ``trusted``: the deployment's public key, when the verifier has it."""
    v = Verification(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        v.add(MANIFEST, False, "missing: not an evidence pack, or its manifest was removed")
        return v
    manifest = manifest_path.read_bytes()
    try:
        v.manifest = parse(manifest)
    except ValueError as exc:
        v.add(MANIFEST, False, f"unreadable: {exc}")
        return v
    v.add(MANIFEST, True, f"pack version {v.manifest['pack_version']}, {len(v.manifest['files'])} files listed")
    _signature(v, manifest, v.manifest, trusted)
    _files(v, v.manifest["files"])
    return v
