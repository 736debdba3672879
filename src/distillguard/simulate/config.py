"""What to simulate (:class:`SimulationConfig`) and what was written (:class:`SimulationResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated run. The same config (seed included) always produces byte-identical files.

    - ``accounts``: total accounts, benign plus attack (each hydra member counts as one).
    - ``attack_share``: share of accounts that are attackers.
    - ``corpus``: a directory of real prompt corpora (``../shared/data``); None uses built-in procedural content.
    - ``populations``: weights replacing the default mix (see ``POPULATIONS``); unnamed populations get weight 0.
      Weights are normalised within benign and within attack populations; ``attack_share`` still splits the
      two, unless one side has no weight at all, in which case every account goes to the other side.
    - ``events_scale``: multiplies every population's request rate (bigger or smaller logs, same mix of
      accounts). Paced attackers stay under their limits, and eval runs keep their benchmark sizes (a scale
      below one runs fewer of them, above one more).
    """

    accounts: int = 1000
    days: float = 7.0
    seed: int = 0
    attack_share: float = 0.08
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    corpus: Path | None = None
    populations: Mapping[str, float] | None = None
    events_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError("accounts must be at least 1")
        if self.days <= 0:
            raise ValueError("days must be positive")
        if not 0.0 <= self.attack_share <= 1.0:
            raise ValueError("attack_share must be between 0 and 1")
        if self.events_scale <= 0:
            raise ValueError("events_scale must be positive")


@dataclass(frozen=True)
class SimulationResult:
    events: int
    accounts: int
    attack_accounts: int
    out_dir: Path
    # Accounts per population.
    populations: dict[str, int]
