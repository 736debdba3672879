"""``simulate()``: allocate accounts to populations, build them, write the three files."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from distillguard.simulate.accounts import link_households
from distillguard.simulate.clock import Rfc3339
from distillguard.simulate.config import SimulationConfig, SimulationResult
from distillguard.simulate.driver import AccountDriver
from distillguard.simulate.populations import POPULATIONS, Actor
from distillguard.simulate.world import World
from distillguard.simulate.writer import write_events, write_jsonl

EVENTS_FILE = "events.jsonl"
ACCOUNTS_FILE = "accounts.jsonl"
LABELS_FILE = "labels.jsonl"


def _largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Integer counts proportional to ``weights`` summing to ``total`` (ties broken by name: deterministic)."""
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {name: total * w / weight_sum for name, w in weights.items()}
    counts = {name: int(x) for name, x in exact.items()}
    by_remainder = sorted(weights, key=lambda n: (-(exact[n] - counts[n]), n))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def allocate(config: SimulationConfig) -> dict[str, int]:
    """Accounts per population: ``attack_share`` splits the sides, weights split each side."""
    if config.populations is not None:
        unknown = set(config.populations) - set(POPULATIONS)
        if unknown:
            raise ValueError(f"unknown populations: {sorted(unknown)}; known: {sorted(POPULATIONS)}")
        weights = {name: float(config.populations.get(name, 0.0)) for name in POPULATIONS}
    else:
        weights = {name: spec.weight for name, spec in POPULATIONS.items()}
    if any(w < 0 for w in weights.values()):
        raise ValueError("population weights must not be negative")
    if sum(weights.values()) <= 0:
        raise ValueError("population weights must not all be zero")
    benign = {n: w for n, w in weights.items() if POPULATIONS[n].label == "benign"}
    attack = {n: w for n, w in weights.items() if POPULATIONS[n].label == "attack"}
    if sum(attack.values()) <= 0:
        n_attack = 0
    elif sum(benign.values()) <= 0:
        n_attack = config.accounts
    else:
        n_attack = round(config.accounts * config.attack_share)
    return {**_largest_remainder(config.accounts - n_attack, benign), **_largest_remainder(n_attack, attack)}


def build_actors(world: World, counts: Mapping[str, int]) -> list[Actor]:
    """All actors, in a seeded random order (so account order reveals nothing about populations)."""
    actors: list[Actor] = []
    for name, spec in POPULATIONS.items():
        if counts.get(name, 0) > 0:
            actors += spec.build(world, counts[name])
    link_households(world.rng("households"), [a.profile for a in actors], ("casual_chat", "developer", "researcher"))
    world.rng("order").shuffle(actors)
    return actors


def simulate(
    config: SimulationConfig, out_dir: Path, progress: Callable[[int], None] | None = None
) -> SimulationResult:
    """Write ``out_dir/events.jsonl`` (time-ordered, schema v1), ``accounts.jsonl`` and ``labels.jsonl``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = World(config)
    counts = allocate(config)
    actors = build_actors(world, counts)
    fmt = Rfc3339()
    write_jsonl(out_dir / ACCOUNTS_FILE, (a.profile.account_record(fmt) for a in actors))
    write_jsonl(out_dir / LABELS_FILE, (a.profile.label_record() for a in actors))
    streams = [
        AccountDriver(
            actor.profile,
            index,
            actor.calls(),
            actor.policy,
            start_us=world.start_us,
            end_us=world.end_us,
            release_us=world.release_us,
            rng=world.rng("driver", actor.profile.account_id),
        ).events()
        for index, actor in enumerate(actors)
    ]
    events = write_events(out_dir / EVENTS_FILE, streams, progress)
    return SimulationResult(
        events=events,
        accounts=len(actors),
        attack_accounts=sum(1 for a in actors if a.profile.label == "attack"),
        out_dir=out_dir,
        populations={name: n for name, n in counts.items() if n > 0},
    )
