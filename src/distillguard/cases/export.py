"""Writing an evidence pack: gather the case, write its files into a fresh folder beside the destination, hash and
sign them, then move the folder into place — a pack is either all there or not there at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from distillguard import __version__
from distillguard.cases import manifest
from distillguard.cases.gather import Subject, gather
from distillguard.cases.report import render
from distillguard.config import Settings
from distillguard.intel.member import load_signer
from distillguard.intel.signing import key_id, public_key_text
from distillguard.respond.book import CaseBook
from distillguard.store.state import StateStore
from distillguard.timefmt import rfc3339, utcnow

CASE_JSON = "case.json"
EXCHANGES = "exchanges.jsonl"
AUDIT = "audit.jsonl"
REPORT = "report.html"


class PackError(Exception):
    """A pack that cannot be written as asked (the destination is in the way)."""


@dataclass(frozen=True, slots=True)
class Written:
    directory: Path
    subject: Subject
    files: dict[str, int]
    accounts: int
    exchanges: int
    audit_entries: int
    public_key: str

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "subject": self.subject.to_json(),
            "files": self.files,
            "accounts": self.accounts,
            "exchanges": self.exchanges,
            "audit_entries": self.audit_entries,
            "public_key": self.public_key,
        }


def check_destination(out: Path, force: bool) -> None:
    """Refuse a destination that is a file, or a folder with something in it (unless ``force``)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PackError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PackError(f"{out} exists and is not empty; choose another --out or give --force to replace it")


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def _place(staged: Path, out: Path) -> None:
    """Move the finished folder to ``out``, replacing what is there (checked by :func:`check_destination`)."""
    if not out.exists():
        staged.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        staged.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_pack(
    settings: Settings,
    store: StateStore,
    subject: Subject,
    out: Path,
    *,
    samples: int | None = None,
    force: bool = False,
) -> Written:
    """Write the evidence pack about ``subject`` to the folder ``out``.

    Raises :class:`~distillguard.cases.gather.SubjectNotFound` for an unknown account or campaign and
    :class:`PackError` when ``out`` is in the way; nothing is left behind in either case."""
    check_destination(out, force)
    book = CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)
    count = settings.cases.samples_per_account if samples is None else samples
    doc = gather(settings, store.engine, book, subject, count)
    signer = load_signer(settings.intel, settings.data_dir)
    public = signer.public_key
    deployment = {"name": settings.intel.provider_name, "identity": signer.identity_id}
    created_at = rfc3339(utcnow())
    generator = f"distillguard {__version__}"
    doc = {
        "pack_version": manifest.PACK_VERSION,
        "generator": generator,
        "created_at": created_at,
        "deployment": {**deployment, "public_key": public_key_text(public), "public_key_id": key_id(public)},
        **doc,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        contents = {
            CASE_JSON: orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n",
            EXCHANGES: _jsonl(doc["exchanges"]),
            AUDIT: _jsonl(doc["audit"]["entries"]),
            REPORT: render(doc).encode("utf-8"),
        }
        for name, data in contents.items():
            _write(staged / name, data)
        body = manifest.build(
            staged,
            list(contents),
            subject=subject.to_json(),
            created_at=created_at,
            generator=generator,
            deployment=deployment,
            public_key=public,
        )
        _write(staged / manifest.MANIFEST, body)
        _write(staged / manifest.SIGNATURE, manifest.sign(body, signer.private_key))
        staged.chmod(0o755)
        _place(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return Written(
        directory=out,
        subject=subject,
        files={name: len(data) for name, data in contents.items()},
        accounts=len(doc["accounts"]),
        exchanges=len(doc["exchanges"]),
        audit_entries=len(doc["audit"]["entries"]),
        public_key=public_key_text(public),
    )
