"""Red-team traffic simulator: labelled API traffic of benign users and distillation campaigns.

``simulate(SimulationConfig(...), out_dir)`` writes three files:

- ``events.jsonl``: every call as an event of docs/events.md (schema version 1), all accounts interleaved in
  time order;
- ``accounts.jsonl``: the accounts file of docs/events.md;
- ``labels.jsonl``: ``{"account_id", "label": "benign"|"attack", "population", "campaign_id"}`` per account.

Populations are documented in :mod:`distillguard.simulate.populations` (``POPULATIONS``). Output is a pure
function of the config: the same seed gives byte-identical files.
"""

from __future__ import annotations

from distillguard.simulate.config import SimulationConfig, SimulationResult
from distillguard.simulate.engine import simulate
from distillguard.simulate.populations import POPULATIONS, PopulationSpec

__all__ = ["POPULATIONS", "PopulationSpec", "SimulationConfig", "SimulationResult", "simulate"]
