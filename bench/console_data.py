"""The console benchmark's data dir: a week of a busy deployment, as the gateway and the analysers would leave it.

    build(out_dir, Scale(accounts=100_000, events=10_000_000)) -> manifest (also written to out_dir/bench-data.json)

The pieces: ``console_world`` (accounts, request pools, planted campaigns, volumes and hours), ``console_verdicts``
(scores, campaign links, each account's week of scores), ``console_week`` (the state store and the case book's week)
and ``console_events`` (the event log).

What goes in, and where it comes from (nothing here is a stand-in for a code path that exists):

- **accounts**: the simulator's populations (``distillguard.simulate``: casual users, developers, researchers,
  business apps, evaluation teams and the single-account attack populations, with its tiers, organisations,
  countries, households, cards and mail domains). Hydra campaigns come from the simulator's own ``hydra`` builder,
  run once per campaign (so there are ~200 of them: one small operation each) plus one run that plants eight large
  ones; a few benign teams are found as clusters too (shared card and system prompt) and judged harmless.
- **events** (``events.db``): the real schema through ``distillguard.events.sqlite.connect``. Each population's
  requests are sampled from its simulated actors (real bodies, signals from ``detect.signals.extract``, replies
  from the simulator, stored as ``text_mode = "truncated"`` keeps them) and replayed at per-account volumes
  (log-normal per population, one account pushed to ``Scale.heavy_events``) over diurnal profiles in each
  account's time zone; hydra members send exactly their simulated calls, in their campaign's pulses. Statuses
  follow the account's standing over time (403 while blocked or challenged, extra 429s while throttled) and the
  simulator's refusal, fault and disconnect rates. Rows are generated one hour at a time and inserted in time
  order with the indexes and rollups dropped; ``connect`` then rebuilds them the way it does for an older log.
- **state** (``state.db``, migrated by ``open_store``): ``scores`` for every account from the transparent rules
  (``detect.rules.score_rules``) over features drawn per population, plus the learned-model, campaign and
  partner-intel reasons in their real shapes; ``score_history`` when the verdict changes or risk moves >= 0.05;
  standings, cases, reviews, appeals, labels, admin tokens and the hash-chained audit trail all written by the real
  ``CaseBook`` (``record``, ``open_campaign_case``, ``confirm``/``reverse``/``escalate``, ``appeal``) on a
  simulated clock, so every audit entry carries the time it happened in the week; ``campaigns`` with their
  members and links (``Campaign.to_json()`` plus the member pairs and the evidence on each); partner intel
  exported by two simulated partners with the real STIX exporter and stored by ``IntelStore.ingest`` (signature
  checked); watermark and provenance checks with real detections (``watermark.text.mark``/``detect``).

Everything is seeded: the same ``Scale`` gives the same data (ids included), except the wall-clock end of the week.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from console_events import Statuses, write_events
from console_verdicts import judge, partner_reports, paths
from console_week import Week, partner_config, write_state
from console_world import Population, Scale, activity, assign_volumes, build_population, hour_matrix
from distillguard.clusters.campaign import Campaign
from distillguard.detect.scorer import Score
from distillguard.events.sqlite import EVENTS_DB
from distillguard.simulate.clock import DAY_US, MINUTE_US, US
from distillguard.store.state import STATE_DB
from distillguard.timefmt import from_epoch_us, rfc3339_from_epoch_us

__all__ = ["GENERATOR_VERSION", "MANIFEST", "Scale", "build"]

GENERATOR_VERSION = 1
MANIFEST = "bench-data.json"


# ------------------------------------------------------------------------------------------------------- build
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def write_config(data_dir: Path, scale: Scale) -> Path:
    """``distillguard.toml`` for this data dir: where it is, how its events keep text, and the intel partners."""
    intel = partner_config(data_dir / "partners")
    lines = [
        f"data_dir = {_toml(str(data_dir))}",
        "",
        "[events]",
        'text_mode = "truncated"',
        f"truncate_chars = {scale.text_chars}",
        "",
        "[intel]",
        f"provider_name = {_toml(intel['provider_name'])}",
        f"group_key = {_toml(intel['group_key'])}",
    ]
    for p in intel["partners"]:
        lines += ["", "[[intel.partners]]", *(f"{k} = {_toml(v)}" for k, v in p.items())]
    path = data_dir / "distillguard.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def rss_mb() -> float:
    """The process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def build(out_dir: Path, scale: Scale, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Build the data dir at ``out_dir`` (replacing what is there); returns the manifest, also saved in it."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    began = time.perf_counter()
    end_us = int(time.time() * US) // MINUTE_US * MINUTE_US
    start_us = end_us - int(scale.days * DAY_US)
    rng = random.Random(scale.seed)
    nprng = np.random.default_rng(scale.seed)
    stages: dict[str, float] = {}

    def stage(name: str, since: float) -> float:
        now = time.perf_counter()
        stages[name] = round(now - since, 1)
        log(f"{name}: {now - since:.1f} s, RSS {rss_mb():,.0f} MB (peak {peak_rss_mb():,.0f} MB)")
        return now

    t = time.perf_counter()
    log(f"building {out_dir}: {scale.accounts:,} accounts, {scale.events:,} events, {scale.days:g} days")
    pop = build_population(scale, from_epoch_us(start_us), log)
    t = stage("accounts_and_requests", t)
    assign_volumes(pop, scale, nprng)
    matrix = hour_matrix(pop, scale, nprng)
    first, last = activity(pop, matrix)
    finals, found = judge(pop, first, last, end_us, rng)
    reports = partner_reports(pop, found, finals, end_us, rng)
    moving, history = paths(pop, finals, first, last, end_us, rng)
    t = stage("volumes_and_scores", t)
    week, state = write_state(out_dir, pop, finals, found, moving, history, reports, end_us, rng, log)
    t = stage("state", t)
    statuses = Statuses(pop, week.levels, rng)
    events = write_events(out_dir / EVENTS_DB, pop, matrix, statuses, pop.world.release_us, nprng, rng, log)
    t = stage("events", t)
    config = write_config(out_dir, scale)
    picks = pick_subjects(pop, finals, found, week)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "scale": asdict(scale),
        "built_at": rfc3339_from_epoch_us(int(time.time() * US)),
        "start": rfc3339_from_epoch_us(start_us),
        "end": rfc3339_from_epoch_us(end_us),
        "config": str(config),
        "accounts": len(pop.accts),
        "populations": dict(Counter(a.profile.population for a in pop.accts)),
        "tiers": dict(Counter(a.profile.tier for a in pop.accts)),
        "verdicts": dict(Counter(s.verdict for s in finals.values())),
        "events": events,
        "state": state,
        "case_book": week.counts,
        "picks": picks,
        "build_s": round(time.perf_counter() - began, 1),
        "stages_s": stages,
        "peak_rss_mb": peak_rss_mb(),
        "disk_bytes": {"events.db": _size(out_dir / EVENTS_DB), "state.db": _size(out_dir / STATE_DB)},
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def pick_subjects(pop: Population, finals: dict[int, Score], found: dict[int, Campaign], week: Week) -> dict[str, Any]:
    """The accounts and campaign the page timings open: the heaviest account, a typical one (median calls, never
    flagged), a flagged one with a case, and the campaign with the most members."""
    by_events = sorted(pop.accts, key=lambda a: a.events)
    quiet = [
        a
        for a in by_events
        if a.index in finals and finals[a.index].verdict == "allow" and a.profile.account_id not in week.levels
    ]
    typical = quiet[len(quiet) // 2]
    heavy = by_events[-1]
    flagged = [a for a in by_events if a.profile.account_id in week.levels and a.campaign < 0]
    biggest = max(found, key=lambda i: len(pop.plans[i].members))
    return {
        "heavy_account": {
            "account_id": heavy.profile.account_id,
            "events": heavy.events,
            "population": heavy.profile.population,
        },
        "typical_account": {
            "account_id": typical.profile.account_id,
            "events": typical.events,
            "population": typical.profile.population,
        },
        "flagged_account": {
            "account_id": flagged[-1].profile.account_id,
            "events": flagged[-1].events,
            "population": flagged[-1].profile.population,
        }
        if flagged
        else None,
        "big_campaign": {
            "cluster_id": pop.plans[biggest].cluster_id,
            "members": len(pop.plans[biggest].members),
            "links": len(pop.plans[biggest].links),
        },
    }
