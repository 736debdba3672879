"""``distillguard ingest``: archive the event stream as Parquet and, optionally, score accounts from it.

Registered in the main CLI as ``app.command("ingest")(ingest)``; also runs as ``python -m distillguard.ingest``.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from distillguard.clikit import AsJson, ConfigFile, DataDir, err, fail, json_out, load
from distillguard.config import Settings


def ingest(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Archive directory: DIR/date=YYYY-MM-DD/hour=HH/*.parquet (default: events.archive_dir).",
        ),
    ] = None,
    stream_url: Annotated[
        str | None,
        typer.Option("--stream-url", help="redis:// URL of the event stream (default: events.stream_url)."),
    ] = None,
    stream: Annotated[str | None, typer.Option(help="Stream name (default: events.stream_name).")] = None,
    group: Annotated[str, typer.Option(help="Consumer group; the workers of one group split the stream.")] = "ingest",
    consumer: Annotated[
        str | None,
        typer.Option(help="This worker's name: unique among running workers, the same across its restarts (hostname)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Events per Parquet file (at most).")] = 5000,
    flush_s: Annotated[
        float, typer.Option("--flush-s", min=0.01, help="Commit a partial batch after this long.")
    ] = 2.0,
    claim_idle_s: Annotated[
        float,
        typer.Option(
            "--claim-idle-s", min=0, help="Take over entries pending this long with a dead worker (0: never)."
        ),
    ] = 300.0,
    verdicts: Annotated[
        str | None,
        typer.Option(
            help="Score accounts; verdicts to 'redis' (hash distillguard:verdicts), a redis:// URL or a .jsonl file."
        ),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="Risk model artefact for --verdicts (default: the shipped one).")
    ] = None,
    rules_only: Annotated[bool, typer.Option("--rules-only", help="Score with the transparent rules alone.")] = False,
    shared_state: Annotated[
        bool,
        typer.Option(
            "--shared-state",
            help="With --verdicts: keep account state in Redis ([detect] state_url), so the workers of one group "
            "score each account on all its events. Only when the gateways do not score (they would count twice).",
        ),
    ] = False,
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            help="State store whose traffic rollups the worker keeps as it archives, for the console and evidence "
            "packs (default: store_url of --config; without a store, no rollups).",
        ),
    ] = None,
    rollups: Annotated[
        bool, typer.Option("--rollups/--no-rollups", help="Keep the traffic rollups when a store is named.")
    ] = True,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once the stream has nothing more to read (backfills).")
    ] = False,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Read the event stream in a consumer group, enrich, archive as hourly Parquet partitions, acknowledge.

    At least once, idempotent: killing a worker loses and duplicates nothing in the archive (docs/events.md). With a
    state store (--store-url, or store_url in --config) it also keeps the traffic rollups the console and evidence
    packs read, each archived event counted once.

    Example: distillguard ingest --stream-url redis://127.0.0.1:6379/0 --group ingest --out ./archive
    """
    import socket

    from distillguard.ingest.worker import IngestOptions, IngestWorker
    from distillguard.logs import configure_logging

    settings = load(config, data_dir)
    configure_logging(settings.logging.level, settings.logging.format)
    url = stream_url or settings.events.stream_url
    if not url:
        raise fail("no stream: pass --stream-url redis://HOST:PORT/DB or set events.stream_url")
    out = out or settings.events.archive_dir
    if out is None and verdicts is None:
        raise fail("nothing to do: pass --out DIR (the archive) and/or --verdicts TARGET")
    rollup_store = (store_url or settings.store_url) if rollups and out is not None else None
    options = IngestOptions(
        stream_url=url,
        out=out,
        stream=stream or settings.events.stream_name,
        group=group,
        consumer=consumer or socket.gethostname(),
        batch=batch,
        flush_s=flush_s,
        claim_idle_s=claim_idle_s or None,
    )
    from distillguard.events.stream import connect

    client = connect(url)
    if shared_state and not (verdicts and settings.detect.state_url):
        raise fail("--shared-state needs --verdicts and detect.state_url (redis://HOST:PORT/DB) in --config")
    scoring = (
        _scoring(settings, verdicts, client, options.consumer, model, rules_only, shared_state) if verdicts else None
    )
    worker = IngestWorker(options, client, scoring, rollups=_rollups(settings, rollup_store, out))
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=worker.metrics.registry)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stats = worker.run(stop, until_idle=until_idle)
    except OSError as exc:
        raise fail(f"cannot write the archive: {escape(str(exc))}") from None
    finally:
        worker.close()
    if as_json:
        json_out(stats.to_json())
    else:
        err.print(
            f"archived {stats.archived} events in {stats.files} files; duplicates skipped {stats.duplicates}, "
            f"trimmed {stats.trimmed}, rejected {stats.rejected}, signals computed {stats.signals_computed}"
            + (f"; {stats.rollup_files} files counted into the rollups" if worker.rollups is not None else "")
        )


def _rollups(settings: Settings, url: str | None, out: Path | None) -> Any:
    """The store's traffic rollups this worker keeps, migrated to this code's schema; None without a store."""
    if url is None or out is None:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from distillguard.ingest.rollups import StoreRollups
    from distillguard.store.migrate import upgrade
    from distillguard.store.state import store_engine

    try:
        engine = store_engine(settings.data_dir, url)
        upgrade(engine)
    except (SQLAlchemyError, ValueError) as exc:
        raise fail(f"cannot open the state store for the rollups: {escape(str(getattr(exc, 'orig', exc)))}") from None
    return StoreRollups(engine, out)


def _scoring(
    settings: Settings, target: str, client: Any, source: str, model: Path | None, rules_only: bool, shared: bool
) -> Any:
    from distillguard.detect.model import RiskModel, shipped_model_available
    from distillguard.detect.scorer import OnlineScorer
    from distillguard.ingest.verdicts import JsonlVerdicts, RedisVerdicts, Scoring, VerdictOutput

    risk_model = None
    if not rules_only and (model is not None or shipped_model_available()):
        try:
            risk_model = RiskModel.load(model)
        except (OSError, ValueError) as exc:
            raise fail(f"cannot load the risk model: {escape(str(exc))}") from None
    output: VerdictOutput
    if target == "redis":
        output = RedisVerdicts(client, source)
    elif target.startswith(("redis://", "rediss://", "unix://")):
        from distillguard.events.stream import connect

        output = RedisVerdicts(connect(target), source)
    else:
        output = JsonlVerdicts(Path(target), source)
    thresholds: Any = settings.detect.thresholds
    scorer = OnlineScorer(risk_model, thresholds, settings.detect.rescore_every)
    if not shared:
        return Scoring(scorer, output)
    from distillguard.detect.features import CLOCK_MODEL_CAP
    from distillguard.detect.shared_scorer import SharedOnlineScorer
    from distillguard.detect.shared_state import RedisAccountStates
    from distillguard.events.stream import connect

    d = settings.detect
    states = RedisAccountStates(
        connect(d.state_url, d.state_timeout_ms / 1000), d.state_prefix, d.state_ttl_s, CLOCK_MODEL_CAP
    )
    return Scoring(SharedOnlineScorer(scorer, states, d.max_pending_calls, d.cache_accounts), output)


def main() -> None:
    """``python -m distillguard.ingest``: the command on its own."""
    typer.run(ingest)
