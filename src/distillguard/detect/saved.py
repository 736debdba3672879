"""An analysis's results kept in a deployment's state store, so that the console shows batch verdicts beside online
ones (``distillguard analyze --data-dir``).

Read back from the files ``analyze`` wrote (whichever engine wrote them): each verdict becomes the account's score
(with a history row where it moved), each campaign a stored campaign, under the id the files give it. A score is
stamped with the time of the analysis: it is the newest word on the account until the gateway scores it again.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from distillguard.clusters.report import read_campaigns
from distillguard.clusters.store import parse_campaigns, save_campaigns
from distillguard.detect.verdicts import VERDICTS
from distillguard.events.jsonl import read_jsonl
from distillguard.store.scores import ScoreRecord, ScoreStore

# Scores per transaction.
BATCH = 10_000


def score_record(row: Any, n: int, at: datetime) -> ScoreRecord:
    """One verdict line of ``analyze`` as a score; a ValueError names what is wrong with line ``n``."""
    try:
        record = ScoreRecord(
            row["account_id"],
            float(row["risk"]),
            row["verdict"],
            list(row["reasons"]),
            int(row["events"]),
            at,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"verdict {n}: missing or malformed field {exc}") from None
    if not isinstance(record.account_id, str) or record.verdict not in VERDICTS:
        raise ValueError(f"verdict {n}: not a verdict of `distillguard analyze`")
    return record


def save_analysis(engine: Engine, verdicts: Path, campaigns: Path | None, at: datetime) -> tuple[int, int]:
    """Save the verdicts (and the campaigns, if a file is given) of an analysis; (scores, campaigns) saved."""
    records = [score_record(row, n, at) for n, row in enumerate(read_jsonl(verdicts), 1)]
    found = parse_campaigns(read_campaigns(campaigns)) if campaigns is not None else []
    store = ScoreStore(engine)
    for start in range(0, len(records), BATCH):
        store.write(records[start : start + BATCH])
    save_campaigns(engine, found, at)
    return len(records), len(found)
