"""``distillguard clusters``: campaigns from a gateway's data directory or from an analysis, as a table or JSONL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from distillguard.detect.signals import extract
from distillguard.events.jsonl import read_jsonl
from distillguard.events.readers import Client, Row
from distillguard.events.schema import UNAUTHENTICATED
from distillguard.events.sqlite import EVENTS_DB, iter_replay


def campaigns_path(verdicts: Path) -> Path:
    """Where ``analyze`` writes the campaigns beside its verdicts: ``v.jsonl`` -> ``v.clusters.jsonl``."""
    return verdicts.with_name(verdicts.name.removesuffix(".jsonl") + ".clusters.jsonl")


def read_campaigns(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"no campaigns file at {path} (written by `distillguard analyze` with --clusters)")
    return read_jsonl(path)


def event_rows(data_dir: Path, since_us: int | None = None) -> Iterator[Row]:
    """The events of a gateway's data directory (from ``since_us`` on) as rows, in time order; signals from the log,
    else computed. Calls without a valid key are left out: they belong to no account."""
    for (
        ts_us,
        account_id,
        status,
        prompt,
        completion,
        model,
        ip,
        agent,
        fingerprint,
        tls,
        endpoint,
    ), signals, request in iter_replay(data_dir / EVENTS_DB, since_us):
        if account_id == UNAUTHENTICATED:
            continue
        if signals is None:
            try:
                body = orjson.loads(request or b"{}")
            except orjson.JSONDecodeError:
                body = {}
            signals = extract(body if isinstance(body, dict) else {}, endpoint)
        yield ts_us, account_id, status, prompt, completion, model, signals, Client(ip, agent, fingerprint, tls=tls)


def render(campaigns: list[dict[str, Any]], console: Console, examples: int = 3) -> None:
    """A table of the campaigns, then the evidence of the first few. Logged values (account ids, user agents)
    come from clients and are escaped, never read as console markup."""
    table = Table("cluster", "size", "verdict", "risk", "calls", "capabilities", "from", "to", "evidence")
    for c in campaigns:
        table.add_row(
            c["cluster_id"],
            str(c["size"]),
            c["verdict"],
            "-" if c["risk"] is None else f"{c['risk']:.2f}",
            str(c["events"]),
            escape(", ".join(list(c["capabilities"])[:3])),
            c["first_seen"][:16],
            c["last_seen"][:16],
            ", ".join(f"{e['kind']} ({e['links']})" for e in c["evidence"][:4]),
        )
    console.print(table)
    for c in campaigns[:examples]:
        console.print(f"\n[bold]{c['cluster_id']}[/bold] ({c['size']} accounts, verdict {c['verdict']})")
        members = ", ".join(m["account_id"] for m in c["members"][:12]) + (" …" if c["size"] > 12 else "")
        console.print("  members: " + escape(members))
        for e in c["evidence"]:
            console.print(f"  {e['kind']} ({e['category']}), {e['links']} links: {e['meaning']}")
            for example in e["examples"][:2]:
                console.print("    e.g. " + escape(example))
        if c["unavailable_evidence"]:
            console.print("  evidence unavailable: " + escape(str(c["unavailable_evidence"])))
