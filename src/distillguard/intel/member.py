"""This deployment as a member of a sharing group: its STIX identity, its signing key, the group key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillguard.config import IntelConfig
from distillguard.intel.privacy import GroupKey, GroupKeyError
from distillguard.intel.signing import Signer, load_or_create_signing_key, public_key_text

# UUIDv5 namespace of member identities: a member's identity id follows from its public key, so it is stable for as
# long as the key is, and two members can never share one.
MEMBER_NAMESPACE = uuid.UUID("0b7a3f7e-52f4-4f0a-9a57-5d1c2f8e6a10")
IDENTITY_CREATED = "2026-01-01T00:00:00.000Z"


def identity_id_for(public_key: str) -> str:
    return f"identity--{uuid.uuid5(MEMBER_NAMESPACE, public_key)}"


@dataclass(frozen=True)
class Member:
    name: str
    signer: Signer
    key: GroupKey | None

    @property
    def identity_id(self) -> str:
        return self.signer.identity_id

    @property
    def public_key(self) -> str:
        return public_key_text(self.signer.public_key)

    def group_key(self) -> GroupKey:
        if self.key is None:
            raise GroupKeyError("no group key configured: set [intel] group_key or group_key_file")
        return self.key

    def identity(self) -> dict[str, Any]:
        """The member's STIX identity object (signed when it goes into a bundle)."""
        return {
            "type": "identity",
            "spec_version": "2.1",
            "id": self.identity_id,
            "created": IDENTITY_CREATED,
            "modified": IDENTITY_CREATED,
            "name": self.name,
            "identity_class": "organization",
            "sectors": ["technology"],
        }


def group_key_from(config: IntelConfig, data_dir: Path) -> GroupKey | None:
    if config.group_key:
        return GroupKey.from_text(config.group_key)
    if config.group_key_file:
        path = Path(config.group_key_file)
        return GroupKey.load(path if path.is_absolute() else data_dir / path)
    return None


def signing_key_path(config: IntelConfig, data_dir: Path) -> Path:
    """Where this deployment's Ed25519 signing key lives (intel objects and evidence packs are signed with it)."""
    path = Path(config.signing_key_file)
    return path if path.is_absolute() else data_dir / path


def load_signer(config: IntelConfig, data_dir: Path) -> Signer:
    """This deployment's signer: its signing key (made on first use) and the identity that follows from it."""
    private = load_or_create_signing_key(signing_key_path(config, data_dir))
    return Signer(identity_id_for(public_key_text(private.public_key())), private)


def load_member(config: IntelConfig, data_dir: Path) -> Member:
    return Member(config.provider_name, load_signer(config, data_dir), group_key_from(config, data_dir))
