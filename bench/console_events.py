"""The console benchmark's event log: a week of calls streamed into ``events.db`` an hour at a time, with statuses
that follow each account's standing, then indexes and rollups rebuilt the way ``connect`` does for an older log.
"""

from __future__ import annotations

import heapq
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from console_world import ENTRY, EVENT_HEAD, Population, fingerprint
from distillguard.events.sqlite import COLUMNS, connect
from distillguard.simulate.clock import HOUR_US, US
from distillguard.simulate.driver import READ_TIMEOUT_MS, STREAM_DISCONNECT, UPSTREAM_ERROR, UPSTREAM_TIMEOUT
from distillguard.simulate.encode import event_id

INSERT_BATCH = 20_000
_INSERT = f"INSERT INTO events ({', '.join(EVENT_HEAD + ENTRY)}) VALUES ({', '.join('?' * len(EVENT_HEAD + ENTRY))})"  # noqa: S608
_ROLLUP_TABLES = ("traffic_minutes", "account_traffic")


# ------------------------------------------------------------------------------------------------------ events
def _drop_derived(conn: sqlite3.Connection) -> list[str]:
    """Leave the bare events table: no indexes, no rollups (``connect`` rebuilds the rollups, as for an older log).
    Returns the statements that create the events table's indexes, as ``connect`` wrote them."""
    indexes = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
        )
    ]
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
    ).fetchall():
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.execute("DROP TRIGGER IF EXISTS events_rollup")  # rollups kept by a trigger in earlier revisions
    for name in _ROLLUP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
    return indexes


class Statuses:
    """What happened to each call: the account's standing at the time, rate limits, upstream faults, hang-ups."""

    def __init__(self, pop: Population, levels: dict[str, list[tuple[int, str]]], rng: random.Random) -> None:
        self.rng = rng
        self.levels: dict[int, tuple[list[int], list[str]]] = {}
        by_id = {a.profile.account_id: a.index for a in pop.accts}
        for account_id, moves in levels.items():
            moves.sort()
            self.levels[by_id[account_id]] = ([t for t, _ in moves], [lv for _, lv in moves])
        self.verified = [a.profile.verified for a in pop.accts]
        self.refused = [a.refused for a in pop.accts]

    def level(self, index: int, ts: int) -> str:
        moves = self.levels.get(index)
        if moves is None:
            return "allow"
        times, levels = moves
        lo, hi = 0, len(times)
        while lo < hi:
            mid = (lo + hi) // 2
            if times[mid] <= ts:
                lo = mid + 1
            else:
                hi = mid
        return levels[lo - 1] if lo else "allow"

    def status(self, index: int, ts: int, stream: bool) -> tuple[int, str | None]:
        rng = self.rng
        level = self.level(index, ts) if index in self.levels else "allow"
        if level == "block":
            return 403, "account_blocked"
        if level == "challenge" and not self.verified[index]:
            return 403, "organization_verification_required"
        roll = rng.random()
        refused = self.refused[index] + (0.35 if level == "throttle" else 0.0)
        if roll < refused:
            return 429, "rate_limit_exceeded"
        roll -= refused
        if roll < UPSTREAM_ERROR:
            return 502, "upstream_error"
        if roll < UPSTREAM_ERROR + UPSTREAM_TIMEOUT:
            return 504, "upstream_timeout"
        if stream and rng.random() < STREAM_DISCONNECT:
            return 499, "client_disconnected"
        return 200, None


def write_events(
    path: Path,
    pop: Population,
    matrix: npt.NDArray[np.uint16],
    statuses: Statuses,
    release_us: int,
    nprng: np.random.Generator,
    rng: random.Random,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Stream the week into ``events.db`` one hour at a time, in time order; then let ``connect`` build the indexes
    and rollups. Returns counts and timings."""
    missing = set(EVENT_HEAD + ENTRY) - set(COLUMNS)
    if missing:
        raise RuntimeError(f"the event log has no columns {sorted(missing)}: update the generator")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = connect(path)
    indexes = _drop_derived(conn)
    conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    # A bulk load into a file that is thrown away if the build stops: no journal, no fsync.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-131072")
    accts = pop.accts
    created = np.array([a.profile.created_at_us for a in accts], dtype=np.int64)
    account_ids = [a.profile.account_id for a in accts]
    orgs = [a.profile.org_id for a in accts]
    keys = [a.profile.keys for a in accts]
    ips = [a.ips for a in accts]
    agents = [a.agents for a in accts]
    prints = {ua: fingerprint(ua) for a in accts for ua in a.agents}
    pool_of = [a.pool for a in accts]
    seq = [0] * len(accts)
    counts: Counter[int] = Counter()
    hydra_calls = pop.hydra_calls
    h_next = 0
    start = pop.world.start_us
    t_gen = 0.0
    t_insert = 0.0
    began = time.perf_counter()
    total = 0
    for h in range(matrix.shape[1]):
        t0 = start + h * HOUR_US
        g0 = time.perf_counter()
        column = matrix[:, h]
        nz = np.flatnonzero(column)
        idx = np.repeat(nz, column[nz])
        ts = np.maximum(t0 + nprng.integers(0, HOUR_US, idx.size), np.minimum(created[idx] + US, t0 + HOUR_US - 1))
        order = np.argsort(ts, kind="stable")
        regular = zip(ts[order].tolist(), idx[order].tolist(), [None] * idx.size, strict=True)
        h_end = h_next
        while h_end < len(hydra_calls) and hydra_calls[h_end][0] < t0 + HOUR_US:
            h_end += 1
        planted = ((c[0], c[1], c) for c in hydra_calls[h_next:h_end])
        h_next = h_end
        rows: list[tuple[Any, ...]] = []
        for t, i, call in heapq.merge(regular, planted, key=lambda r: r[0]):
            if call is None:
                pool = pop.pools[pool_of[i]]
                if t < release_us and pool.before_release:
                    e = pool.before_release[int(rng.random() * len(pool.before_release))]
                else:
                    e = int(rng.random() * len(pool.ok))
                ok, refused, latency, ttft, stream = (
                    pool.ok[e],
                    pool.refused[e],
                    pool.latency[e],
                    pool.ttft[e],
                    pool.stream[e],
                )
            else:
                _, _, ok, refused, latency, ttft, stream = call
            status, code = statuses.status(i, t, stream)
            counts[status] += 1
            if status == 200:
                jitter = 0.75 + 0.5 * rng.random()
                entry, lat, first = ok, round(latency * jitter, 1), round(ttft * jitter, 1) if stream else None
            elif status == 499:
                entry, lat, first = refused, round(ttft + rng.random() * latency, 1), round(ttft, 1)
            elif status >= 500:
                entry, lat, first = (
                    refused,
                    READ_TIMEOUT_MS if status == 504 else round(30 + rng.random() * 2000, 1),
                    None,
                )
            else:
                entry, lat, first = refused, round(0.4 + rng.random() * 2.5, 2), None
            k = keys[i]
            key = k[0] if len(k) == 1 or rng.random() < 0.8 else k[rng.randrange(len(k))]
            a = agents[i]
            ua = a[0] if len(a) == 1 or rng.random() < 0.9 else a[-1]
            addr = ips[i][rng.randrange(len(ips[i]))]
            rows.append(
                (
                    event_id(t, i, seq[i]),
                    t,
                    account_ids[i],
                    key,
                    orgs[i],
                    addr,
                    ua,
                    prints[ua],
                    status,
                    lat,
                    first,
                    code,
                    *entry,
                )
            )
            seq[i] += 1
        g1 = time.perf_counter()
        conn.execute("BEGIN")
        for j in range(0, len(rows), INSERT_BATCH):
            conn.executemany(_INSERT, rows[j : j + INSERT_BATCH])
        conn.execute("COMMIT")
        t_gen += g1 - g0
        t_insert += time.perf_counter() - g1
        total += len(rows)
        if h % 12 == 11:
            rate = total / (time.perf_counter() - began)
            log(f"  events: hour {h + 1}/{matrix.shape[1]}, {total:,} rows, {rate:,.0f}/s")
    t_load = time.perf_counter() - began
    b0 = time.perf_counter()
    for statement in indexes:  # the DDL connect() uses, timed on its own
        conn.execute(statement)
    conn.close()
    b1 = time.perf_counter()
    connect(path).close()  # the rollups, filled from the events: the path an older log takes
    b2 = time.perf_counter()
    log(f"  indexes built in {b1 - b0:.1f} s, rollups filled by connect() in {b2 - b1:.1f} s")
    return {
        "rows": total,
        "statuses": {str(k): v for k, v in sorted(counts.items())},
        "generate_s": round(t_gen, 1),
        "insert_s": round(t_insert, 1),
        "load_s": round(t_load, 1),
        "indexes_s": round(b1 - b0, 1),
        "rollups_s": round(b2 - b1, 1),
    }
