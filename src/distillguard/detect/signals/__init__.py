"""Per-request signals: features computed once per event from its request body.

``extract(request, endpoint)`` reads one OpenAI request body and returns a ``RequestSignals``; ``as_row`` turns it
into plain column values (``SIGNAL_COLUMNS`` order) for storage, and the account-level features aggregate them.
The phrase detectors are declarative rule files under ``rules/``; the benchmark index is ``data/benchmarks.bin``.
"""

from distillguard.detect.signals.extract import extract
from distillguard.events.signals import DOMAINS, SIGNAL_COLUMNS, RequestSignals, as_row

__all__ = ["DOMAINS", "SIGNAL_COLUMNS", "RequestSignals", "as_row", "extract"]
