"""The ``distillguard`` command: a thin layer over the packages, one function call per command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from distillguard.cases.cli import case_app
from distillguard.clikit import AsJson, ConfigFile, DataDir, err, fail, json_out, load, out
from distillguard.config import Level, Settings, UpstreamConfig
from distillguard.console.cli import console
from distillguard.ingest.cli import ingest
from distillguard.intel.cli import intel_app
from distillguard.intel.hub.cli import hub_app
from distillguard.store.cli import db_app
from distillguard.timefmt import parse_rfc3339, rfc3339

if TYPE_CHECKING:
    from distillguard.respond.book import CaseBook
    from distillguard.watermark.keys import Watermarks

app = typer.Typer(
    help="Defend an OpenAI-compatible API against model extraction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Issue, list and revoke API keys.", no_args_is_help=True)
accounts_app = typer.Typer(help="Create, update, list, import and export accounts.", no_args_is_help=True)
events_app = typer.Typer(help="Read the event log.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
review_app = typer.Typer(
    help="Review cases: list, show, confirm, reverse, escalate; appeals, the audit trail, labels.",
    no_args_is_help=True,
)
admin_app = typer.Typer(help="Administer the admin API.", no_args_is_help=True)
admin_token_app = typer.Typer(help="Issue, list and revoke admin API tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(events_app, name="events")
app.add_typer(config_app, name="config")
app.add_typer(review_app, name="review")
app.add_typer(admin_app, name="admin")
watermark_app = typer.Typer(help="Watermarks: detect them in text.", no_args_is_help=True)
app.add_typer(watermark_app, name="watermark")
provenance_app = typer.Typer(help="Provenance: did a suspect model learn from what we served?", no_args_is_help=True)
app.add_typer(provenance_app, name="provenance")
admin_app.add_typer(admin_token_app, name="token")
app.add_typer(intel_app, name="intel")
app.add_typer(hub_app, name="hub")
app.add_typer(db_app, name="db")
app.add_typer(case_app, name="case")
app.command("ingest")(ingest)
app.command("console")(console)


# serve ----------------------------------------------------------------------------------------------
@app.command()
def serve(
    config: ConfigFile = None,
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", "-p", help="Port to listen on.")] = None,
    upstream: Annotated[
        str | None, typer.Option(help="Upstream base URL (e.g. http://127.0.0.1:8000/v1), or 'mock'.")
    ] = None,
    upstream_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the upstream's API key.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Gateway processes on the port (more than one needs [limits] storage_uri on Redis)."),
    ] = None,
) -> None:
    """Run the gateway.

    Example: distillguard serve --port 8080 --data-dir ./dg --upstream http://127.0.0.1:8000/v1
    Example: DISTILLGUARD_LIMITS__STORAGE_URI=redis://127.0.0.1:6379/0 distillguard serve --workers 4
    """
    from distillguard.gateway.server import serve as run

    overrides: dict[str, Any] = {"server.host": host, "server.port": port, "server.workers": workers}
    if upstream is not None:
        overrides["upstreams"] = [UpstreamConfig(name="default", base_url=upstream, api_key_env=upstream_key_env)]
    run(load(config, data_dir, **overrides))


@app.command("mock-upstream")
def mock_upstream(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8001,
    latency_ms: Annotated[float, typer.Option(help="Delay added before every answer.")] = 0.0,
    api_key: Annotated[str | None, typer.Option(help="Require this bearer key.")] = None,
) -> None:
    """Run the deterministic mock OpenAI-compatible upstream (for demos, tests and benchmarks).

    Example: distillguard mock-upstream --port 8001
    """
    from distillguard.mock_upstream.server import MockUpstream, run_mock

    err.print(f"mock upstream on http://{host}:{port}/v1")
    run_mock(host, port, MockUpstream(latency_ms=latency_ms, api_key=api_key))


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="Where the demo keeps its state.")] = Path(
        "demo-data"
    ),
    seconds: Annotated[float, typer.Option(min=5, help="How long the simulated traffic runs.")] = 40.0,
    port: Annotated[int, typer.Option(help="Port of the demo gateway.")] = 8765,
    keep_serving: Annotated[
        bool | None,
        typer.Option(
            "--keep-serving/--no-keep-serving",
            help="After the traffic, keep the gateway and its console up until Ctrl-C (default: at a terminal).",
        ),
    ] = None,
) -> None:
    """Run the gateway with simulated customers, a harvester and a hydra campaign, and show what it does with each,
    in the terminal and in the console (its URL and an admin token are printed first).

    Example: distillguard demo --seconds 40
    """
    from distillguard.demo import demo as run_demo

    run_demo(data_dir, seconds, port, keep_serving)


# keys -----------------------------------------------------------------------------------------------
def _store(config: Path | None, data_dir: Path | None) -> Any:
    from distillguard.store import open_store

    settings = load(config, data_dir)
    return open_store(settings.data_dir, settings.store_url, settings.secret), settings


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", "-a", help="Account id (created if new).")],
    org: Annotated[str | None, typer.Option("--org", help="Organisation id.")] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="Limits tier (see [limits.tiers]).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for the key.")] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Issue a key; it is printed once and stored only as a keyed hash.

    Example: distillguard keys create --data-dir ./dg --account acme --org acme-inc --tier standard
    """
    store, settings = _store(config, data_dir)
    if tier is not None and tier not in settings.limits.tiers:
        raise fail(f"unknown tier {tier!r}; configured tiers: {', '.join(sorted(settings.limits.tiers))}")
    store.upsert_account(account, org_id=org, tier=tier)
    record, plaintext = store.create_key(account, name)
    if as_json:
        out.print_json(orjson.dumps({"key_id": record.key_id, "account_id": account, "key": plaintext}).decode())
    else:
        err.print(f"key {record.key_id} for account {account} (shown once, store it now):")
        print(plaintext)


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option("--account", "-a", help="Only this account's keys.")] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """List keys (ids and state; never the keys themselves).

    Example: distillguard keys list --data-dir ./dg --account acme
    """
    store, _ = _store(config, data_dir)
    keys = store.list_keys(account)
    rows = [
        {
            "key_id": k.key_id,
            "account_id": k.account_id,
            "name": k.name,
            "created_at": rfc3339(k.created_at),
            "revoked_at": rfc3339(k.revoked_at) if k.revoked_at else None,
        }
        for k in keys
    ]
    if as_json:
        out.print_json(orjson.dumps(rows).decode())
        return
    table = Table("key id", "account", "name", "created", "state")
    for r in rows:
        table.add_row(
            r["key_id"],
            r["account_id"],
            r["name"] or "",
            r["created_at"],
            "revoked " + r["revoked_at"] if r["revoked_at"] else "active",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a key; running gateways refuse it within `server.auth_cache_ttl_s` seconds.

    Example: distillguard keys revoke --data-dir ./dg 3f2a9c1b7d4e
    """
    from distillguard.store.state import NotFoundError

    store, _ = _store(config, data_dir)
    try:
        key = store.revoke_key(key_id)
    except NotFoundError as exc:
        raise fail(str(exc)) from None
    err.print(f"revoked {key.key_id} (account {key.account_id})")


# accounts -------------------------------------------------------------------------------------------
@accounts_app.command("set")
def accounts_set(
    account: Annotated[str, typer.Argument(help="Account id (created if new).")],
    org: Annotated[str | None, typer.Option("--org")] = None,
    tier: Annotated[str | None, typer.Option("--tier")] = None,
    verified: Annotated[bool | None, typer.Option("--verified/--unverified")] = None,
    payment_fingerprint: Annotated[str | None, typer.Option("--payment-fingerprint")] = None,
    email_domain: Annotated[str | None, typer.Option("--email-domain")] = None,
    country: Annotated[str | None, typer.Option("--country", help="ISO 3166 alpha-2 code.")] = None,
    requests_limit: Annotated[
        list[str] | None, typer.Option("--requests-limit", help="Override, e.g. '100/minute' (repeatable).")
    ] = None,
    tokens_limit: Annotated[
        list[str] | None, typer.Option("--tokens-limit", help="Override, e.g. '200000/minute' (repeatable).")
    ] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Create or update an account; limit overrides replace the tier's account limits.

    Example: distillguard accounts set acme --data-dir ./dg --verified --requests-limit 1200/minute
    """
    from distillguard.config import LimitSet

    store, settings = _store(config, data_dir)
    if tier is not None and tier not in settings.limits.tiers:
        raise fail(f"unknown tier {tier!r}; configured tiers: {', '.join(sorted(settings.limits.tiers))}")
    override = None
    if requests_limit or tokens_limit:
        existing = store.get_account(account)
        override = dict(existing.limits_override or {}) if existing else {}
        try:
            LimitSet(requests=requests_limit or [], tokens=tokens_limit or [])
        except ValueError as exc:
            raise fail(str(exc)) from None
        if requests_limit:
            override["requests"] = requests_limit
        if tokens_limit:
            override["tokens"] = tokens_limit
    acc = store.upsert_account(
        account,
        org_id=org,
        tier=tier,
        verified=verified,
        payment_fingerprint=payment_fingerprint,
        email_domain=email_domain,
        country=country,
        limits_override=override,
    )
    out.print_json(orjson.dumps(acc.to_json()).decode())


@accounts_app.command("list")
def accounts_list(config: ConfigFile = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List accounts.

    Example: distillguard accounts list --data-dir ./dg
    """
    store, _ = _store(config, data_dir)
    rows = [a.to_json() for a in store.iter_accounts()]
    if as_json:
        out.print_json(orjson.dumps(rows).decode())
        return
    table = Table("account", "org", "tier", "verified", "created")
    for r in rows:
        table.add_row(
            r["account_id"], r["org_id"] or "", r["tier"] or "", "yes" if r["verified"] else "no", r["created_at"] or ""
        )
    out.print(table)


@accounts_app.command("export")
def accounts_export(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write ('-' for stdout).")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Write accounts as JSONL (the accounts file of docs/events.md).

    Example: distillguard accounts export --data-dir ./dg --out accounts.jsonl
    """
    from distillguard.events.jsonl import write_jsonl

    store, _ = _store(config, data_dir)
    rows = (a.to_json() for a in store.iter_accounts())
    if str(out_file) == "-":
        count = write_jsonl(rows, sys.stdout.buffer)
    else:
        with out_file.open("wb") as handle:
            count = write_jsonl(rows, handle)
    err.print(f"wrote {count} accounts")


@accounts_app.command("import")
def accounts_import(
    in_file: Annotated[Path, typer.Argument(help="JSONL accounts file.")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Create or update accounts from a JSONL accounts file.

    Example: distillguard accounts import --data-dir ./dg accounts.jsonl
    """
    from distillguard.store.accounts_file import read_accounts

    store, _ = _store(config, data_dir)
    try:
        count = store.import_accounts(read_accounts(in_file))
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    err.print(f"imported {count} accounts")


# events ---------------------------------------------------------------------------------------------
@events_app.command("export")
def events_export(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write ('-' for stdout).")],
    accounts_out: Annotated[Path | None, typer.Option(help="Also write the accounts file here.")] = None,
    since: Annotated[str | None, typer.Option(help="Only events at or after this RFC 3339 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Only events before this RFC 3339 time.")] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Write the event log as JSONL in the documented schema (docs/events.md).

    Example: distillguard events export --data-dir ./dg --out events.jsonl --accounts-out accounts.jsonl
    """
    from distillguard.events.export import export_events

    settings = load(config, data_dir)
    try:
        since_us = int(parse_rfc3339(since).timestamp() * 1e6) if since else None
        until_us = int(parse_rfc3339(until).timestamp() * 1e6) if until else None
    except ValueError as exc:
        raise fail(f"not an RFC 3339 time: {exc}") from None
    try:
        count = export_events(settings.data_dir, out_file, since_us, until_us)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    err.print(f"wrote {count} events")
    if accounts_out is not None:
        accounts_export(accounts_out, config, data_dir)


# detection ------------------------------------------------------------------------------------------
def _progress(label: str) -> Any:
    """A rich progress bar on a terminal, nothing otherwise (CI logs stay clean)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not err.is_terminal:
        return None
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    return progress


@app.command()
def simulate(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for events.jsonl, accounts.jsonl, labels.jsonl.")
    ],
    accounts: Annotated[int, typer.Option(help="Number of accounts.")] = 1000,
    days: Annotated[float, typer.Option(help="Simulated days.")] = 7.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    attack_share: Annotated[float, typer.Option(help="Share of attacker accounts.")] = 0.08,
    corpus: Annotated[Path | None, typer.Option(help="Real prompt corpora (e.g. ../shared/data).")] = None,
    scale: Annotated[float, typer.Option(help="Multiply every population's request rate.")] = 1.0,
) -> None:
    """Generate labelled traffic: benign populations and extraction attacks, in the event schema.

    Example: distillguard simulate --accounts 1000 --days 7 --seed 1 --out sim/ --corpus ../shared/data
    """
    from distillguard.simulate import SimulationConfig
    from distillguard.simulate import simulate as run

    if corpus is not None and not corpus.is_dir():
        raise fail(f"no corpus directory at {corpus}")
    config = SimulationConfig(
        accounts=accounts, days=days, seed=seed, attack_share=attack_share, corpus=corpus, events_scale=scale
    )
    progress = _progress("simulating")
    if progress is None:
        result = run(config, out_dir)
    else:
        with progress:
            task = progress.add_task("events", total=None)
            result = run(config, out_dir, lambda n: progress.update(task, completed=n))
    err.print(
        f"wrote {result.events} events of {result.accounts} accounts ({result.attack_accounts} attackers) to {out_dir}"
    )


@app.command()
def analyze(
    events: Annotated[
        str,
        typer.Option(
            "--events",
            "-e",
            help="Event log (JSONL), or the Parquet archive `distillguard ingest` writes (a directory; with "
            "--engine spark also a URL Spark reads, e.g. s3a://bucket/archive).",
        ),
    ],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Verdicts file to write (JSONL).")],
    accounts: Annotated[Path | None, typer.Option(help="Accounts file (JSONL).")] = None,
    input_format: Annotated[str, typer.Option(help="native (docs/events.md) or glasswally.")] = "native",
    model: Annotated[Path | None, typer.Option(help="Risk model artefact (default: the shipped one).")] = None,
    rules_only: Annotated[bool, typer.Option("--rules-only", help="Score with the transparent rules alone.")] = False,
    workers: Annotated[int | None, typer.Option(help="Parser processes (default: CPU count, at most 4).")] = None,
    recompute_signals: Annotated[
        bool, typer.Option("--recompute-signals", help="Ignore signals stored with the events; compute them again.")
    ] = False,
    clusters: Annotated[bool, typer.Option(help="Link accounts into campaigns and judge them as a whole.")] = True,
    clusters_out: Annotated[
        Path | None, typer.Option(help="Campaigns file to write (default: OUT with .clusters.jsonl).")
    ] = None,
    engine: Annotated[
        Literal["embedded", "spark"] | None,
        typer.Option(
            help="embedded (this process) or spark (PySpark jobs over the archive); default [analyze] engine."
        ),
    ] = None,
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master: local[*], spark://host:7077, yarn …; default [analyze].")
    ] = None,
    spark_conf: Annotated[
        list[str] | None, typer.Option("--spark-conf", help="A Spark setting key=value (repeatable).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", "-d", help="Also keep the verdicts and campaigns in this deployment's store."),
    ] = None,
    config: ConfigFile = None,
) -> None:
    """Score every account of an event log: risk, verdict, reasons, and when it would have been flagged.

    With --data-dir the verdicts (as the accounts' scores) and the campaigns are also saved in that deployment's
    state store (its store_url from --config, if any), where the console shows them.

    Example: distillguard analyze --events sim/events.jsonl --accounts sim/accounts.jsonl --out verdicts.jsonl
    Example: distillguard analyze --events /data/archive --engine spark --spark-master spark://head:7077 -o v.jsonl
    Example: distillguard analyze --events events.jsonl --out verdicts.jsonl --data-dir ./dg
    """
    from distillguard.detect.model import RiskModel, shipped_model_available

    settings = load(config, None)
    chosen = engine or settings.analyze.engine
    risk_model = None
    if not rules_only and (model is not None or shipped_model_available()):
        try:
            risk_model = RiskModel.load(model)
        except (OSError, ValueError) as exc:
            raise fail(f"cannot load the risk model: {exc}") from None
    from distillguard.clusters.report import campaigns_path

    more: dict[str, Any] = {"clusters": clusters, "clusters_out": None}
    if clusters:
        more["clusters_out"] = clusters_out or campaigns_path(out_file)
    if chosen == "spark":
        from distillguard.batch.session import SparkUnavailable
        from distillguard.batch.spark import run_cli

        try:
            report = run_cli(
                events,
                out_file,
                accounts,
                risk_model,
                recompute_signals,
                input_format,
                spark_master or settings.analyze.spark_master,
                [*(f"{k}={v}" for k, v in settings.analyze.spark_conf.items()), *(spark_conf or [])],
                **more,
            )
        except (FileNotFoundError, ValueError, SparkUnavailable) as exc:
            raise fail(escape(str(exc))) from None  # "distillguard[spark]" is not rich markup
    else:
        from distillguard.detect.analyze import analyze as run

        progress = _progress("analysing")
        try:
            if progress is None:
                report = run(
                    Path(events), out_file, accounts, input_format, risk_model, workers, None, recompute_signals, **more
                )
            else:
                with progress:
                    task = progress.add_task("lines", total=None)
                    report = run(
                        Path(events),
                        out_file,
                        accounts,
                        input_format,
                        risk_model,
                        workers,
                        lambda n: progress.advance(task, n),
                        recompute_signals,
                        **more,
                    )
        except (FileNotFoundError, ValueError) as exc:
            raise fail(str(exc)) from None
    err.print(
        f"{report.events} events of {report.accounts} accounts; flagged {report.flagged}; verdicts {report.verdicts}"
    )
    if clusters:
        err.print(f"{report.campaigns} campaigns of {report.clustered} accounts written to {more['clusters_out']}")
    if report.skipped:
        err.print(f"skipped {report.skipped} lines: {report.skip_reasons}")
    if report.out_of_order:
        err.print(f"{report.out_of_order} events were out of time order in the file (replayed in order)")
    err.print("seconds: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in report.stages.items()))
    if data_dir is not None:
        _save_analysis(config, data_dir, out_file, more["clusters_out"])


def _save_analysis(config: Path | None, data_dir: Path, verdicts: Path, campaigns: Path | None) -> None:
    from distillguard.detect.saved import save_analysis
    from distillguard.timefmt import utcnow

    store, _ = _store(config, data_dir)
    try:
        scores, saved = save_analysis(store.engine, verdicts, campaigns, utcnow())
    except (OSError, ValueError) as exc:
        raise fail(escape(str(exc))) from None
    finally:
        store.close()
    err.print(f"saved {scores} scores and {saved} campaigns in the store")


@app.command()
def clusters(
    data_dir: Annotated[Path | None, typer.Option(help="A gateway's data directory: cluster its event log.")] = None,
    verdicts: Annotated[
        Path | None, typer.Option("--verdicts", "-v", help="Verdicts from `analyze`: list the campaigns it found.")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the campaigns as JSONL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSONL instead of a table.")] = False,
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="With --data-dir: keep the campaigns in the store (the console).")
    ] = True,
    config: ConfigFile = None,
) -> None:
    """List campaigns: linked accounts, their size, volume, capabilities, time span, verdict and evidence.

    With --data-dir the campaigns found are also saved in the deployment's store, where the console shows them
    (campaign cases are opened by the clustering job in `serve`, or by `review import-campaigns`).

    Example: distillguard clusters --verdicts verdicts.jsonl
    Example: distillguard clusters --data-dir ./dg
    """
    from distillguard.clusters.report import campaigns_path, read_campaigns, render

    if (data_dir is None) == (verdicts is None):
        raise fail("give exactly one of --data-dir or --verdicts")
    try:
        if verdicts is not None:
            found = read_campaigns(campaigns_path(verdicts))
        else:
            found = _cluster_log(config, data_dir, save)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(escape(str(exc))) from None
    if out_file is not None:
        out_file.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in found))
    if data_dir is not None and save:
        err.print(f"{len(found)} campaigns saved in the store")
    if as_json:
        for c in found:
            sys.stdout.write(orjson.dumps(c).decode() + "\n")
        return
    if not found:
        out.print("no campaigns found")
        return
    render(found, out)


def _cluster_log(config: Path | None, data_dir: Path | None, save: bool) -> list[dict[str, Any]]:
    """The campaigns of a data directory's whole event log (saved in its store with ``save``), as JSON."""
    from distillguard.clusters.run import find_in_log, save_findings
    from distillguard.timefmt import utcnow

    store, settings = _store(config, data_dir)
    try:
        findings, _ = find_in_log(settings, {a.account_id: a for a in store.iter_accounts()})
        if save:
            save_findings(store.engine, findings, utcnow())
    finally:
        store.close()
    return [f.campaign.to_json() for f in findings]


@app.command()
def evaluate(
    verdicts: Annotated[Path, typer.Option("--verdicts", "-v", help="Verdicts from `analyze`.")],
    labels: Annotated[Path | None, typer.Option(help="Labels file from `simulate`.")] = None,
    glasswally_log: Annotated[Path | None, typer.Option(help="Take labels from Glasswally's labelled log.")] = None,
    events: Annotated[Path | None, typer.Option(help="The event log, to run the baselines on.")] = None,
    input_format: Annotated[str, typer.Option(help="Format of --events: native or glasswally.")] = "native",
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write the full report as JSON.")] = None,
) -> None:
    """Measure verdicts against labels (ROC-AUC, TPR at low FPR, per population), with baselines.

    Example: distillguard evaluate --verdicts verdicts.jsonl --labels sim/labels.jsonl --events sim/events.jsonl
    """
    from distillguard.detect.evaluate import (
        baseline_scores,
        by_population,
        labels_from_glasswally,
        read_labels,
        summary_rows,
    )
    from distillguard.detect.evaluate import (
        evaluate as run,
    )
    from distillguard.events.jsonl import read_jsonl

    if (labels is None) == (glasswally_log is None):
        raise fail("give exactly one of --labels and --glasswally-log")
    try:
        label_map = read_labels(labels) if labels is not None else labels_from_glasswally(glasswally_log)  # type: ignore[arg-type]
        rows = read_jsonl(verdicts)
        base = baseline_scores(events, input_format, [r["account_id"] for r in rows]) if events else None
        report = run(rows, label_map, base)
    except (OSError, ValueError, KeyError) as exc:
        raise fail(str(exc)) from None
    table = Table("metric", "value", title="detection quality")
    for name, value in summary_rows(report):
        table.add_row(name, value)
    out.print(table)
    pops = Table(
        "population",
        "kind",
        "accounts",
        "flagged",
        "blocked",
        "AUC vs benign",
        "median events to flag",
        "baseline AUCs",
        title="per population",
    )
    for pop, cells in by_population(report).items():
        pops.add_row(pop, *cells)
    out.print(pops)
    if out_file is not None:
        out_file.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="Simulated run directories (repeatable).")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where to write the model artefact.")],
    version: Annotated[str, typer.Option(help="Version recorded in the artefact.")] = "risk-v1",
) -> None:
    """Train the learned risk model on labelled simulated runs.

    Example: distillguard train --data sim/seed1 --data sim/seed2 --out src/distillguard/detect/models/risk-v1.skops
    """
    from distillguard.detect.training import train as run

    model, rows, attacks = run(data, out_file, version)
    err.print(f"trained {model.version} on {rows} snapshots ({attacks} of attackers); wrote {out_file}")


# review ---------------------------------------------------------------------------------------------
CaseStatusOption = Literal["open", "escalated", "confirmed", "reversed"]
LevelOption = Literal["watch", "throttle", "degrade", "challenge", "block"]
Reviewer = Annotated[
    str | None, typer.Option("--reviewer", "-r", help="Who decides (recorded in the audit trail); default $USER.")
]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail and as the label's reason).")]


def _book(config: Path | None, data_dir: Path | None) -> CaseBook:
    """The case book in the state store of the configured data directory."""
    from distillguard.respond.book import CaseBook
    from distillguard.store import open_store

    settings = load(config, data_dir)
    store = open_store(settings.data_dir, settings.store_url, settings.secret)
    return CaseBook(store.engine, store.secret, settings.respond, settings.detect.thresholds)


def _reviewer(reviewer: str | None) -> str:
    name = (reviewer or os.environ.get("USER") or "").strip()
    if not name:
        err.print("[red]error:[/red] give --reviewer NAME (there is no $USER to default to)")
        raise typer.Exit(2)
    return name


def _case_failed(exc: Exception) -> typer.Exit:
    return fail(escape(str(getattr(exc, "message", exc))))


def _cases_table(cases: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table("case", "subject", "members", "status", "proposed", "applied", "risk", "updated", title=title)
    for c in cases:
        subject = f"{c['subject']['kind']}:{c['subject']['id']}"
        risk = "" if c["risk"] is None else f"{c['risk']:.3f}"
        table.add_row(
            c["case_id"],
            escape(subject),
            str(len(c["members"])),
            c["status"],
            c["proposed"],
            c["applied"],
            risk,
            c["updated_at"],
        )
    return table


def _audit_table(entries: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table("seq", "at", "actor", "action", "case", "account", title=title)
    table.add_column("detail", overflow="fold")
    for e in entries:
        table.add_row(
            str(e["seq"]),
            e["at"],
            escape(e["actor"]),
            e["action"],
            e["case_id"] or "",
            escape(e["account_id"] or ""),
            escape(orjson.dumps(e["detail"], option=orjson.OPT_SORT_KEYS).decode()),
        )
    return table


@review_app.command("list")
def review_list(
    status: Annotated[CaseStatusOption | None, typer.Option("--status", help="Only cases in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many (newest first).")] = 100,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """List cases, the most recently updated first, with the count of cases in each state.

    Example: distillguard review list --data-dir ./dg --status open
    """
    book = _book(config, data_dir)
    cases = [c.to_json() for c in book.cases(status, limit)]
    counts = book.count_cases()
    if as_json:
        json_out(cases)
        return
    if not cases:
        out.print("no cases" + (f" {status}" if status else ""))
    else:
        out.print(_cases_table(cases))
    err.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no cases at all")


@review_app.command("show")
def review_show(
    case_id: Annotated[str, typer.Argument(help="The case id (case_...).")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Show a case: its members' standings, the appeals filed and its audit entries.

    Example: distillguard review show --data-dir ./dg case_3f2a9c1b7d4e
    """
    from distillguard.gateway.admin import case_detail
    from distillguard.respond.book import CaseError

    book = _book(config, data_dir)
    try:
        detail = case_detail(book, case_id)
    except CaseError as exc:
        raise _case_failed(exc) from None
    if as_json:
        json_out(detail)
        return
    out.print(_cases_table([detail], title=f"case {case_id}"))
    if detail["reasons"]:
        out.print("reasons: " + escape(", ".join(str(r) for r in detail["reasons"])))
    standings = Table("account", "level", "pending", "confirmed", "exempt until", "source", "case", title="standings")
    for st in detail["standings"]:
        standings.add_row(
            escape(st["account_id"]),
            st["level"],
            st["pending"] or "",
            "yes" if st["confirmed"] else "no",
            st["exempt_until"] or "",
            st["source"],
            st["case_id"] or "",
        )
    out.print(standings)
    if len(detail["members"]) > len(detail["standings"]):
        out.print(f"(standings of the first {len(detail['standings'])} of {len(detail['members'])} members)")
    if detail["appeals"]:
        appeals = Table("appeal", "account", "filed", "contact", "message", title="appeals")
        for a in detail["appeals"]:
            appeals.add_row(
                a["appeal_id"], escape(a["account_id"]), a["filed_at"], escape(a["contact"] or ""), escape(a["message"])
            )
        out.print(appeals)
    else:
        out.print("no appeals")
    out.print(_audit_table(detail["audit"], title="audit trail"))


def _decide(
    action: str,
    case_id: str,
    reason: str,
    reviewer: str | None,
    config: Path | None,
    data_dir: Path | None,
    level: Level | None = None,
    as_json: bool = False,
) -> None:
    from distillguard.respond.book import CaseError

    name = _reviewer(reviewer)
    book = _book(config, data_dir)
    try:
        if action == "confirm":
            case = book.confirm(case_id, name, reason, level)
        elif action == "reverse":
            case = book.reverse(case_id, name, reason)
        else:
            case = book.escalate(case_id, name, reason)
    except CaseError as exc:
        raise _case_failed(exc) from None
    if as_json:
        json_out(case.to_json())
        return
    members = f"{len(case.members)} account" + ("" if len(case.members) == 1 else "s")
    out.print(f"case {case.case_id} {case.status} by {escape(name)}: {case.applied} applies to {members}")
    if action != "escalate":
        err.print("running gateways apply it at their next sync (respond.sync_interval_s)")


@review_app.command("confirm")
def review_confirm(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    reason: Reason,
    reviewer: Reviewer = None,
    level: Annotated[
        LevelOption | None, typer.Option("--level", help="Apply this level instead of the proposed one.")
    ] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the updated case as JSON.")] = False,
) -> None:
    """Confirm a case: the proposed level (or --level) applies to every member and holds until reversed.

    Example: distillguard review confirm --data-dir ./dg case_3f2a9c1b7d4e --reason "harvester" --level block
    """
    _decide("confirm", case_id, reason, reviewer, config, data_dir, level, as_json)


@review_app.command("reverse")
def review_reverse(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    reason: Reason,
    reviewer: Reviewer = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the updated case as JSON.")] = False,
) -> None:
    """Reverse a case: service is restored to every member, and detection leaves them alone for a while.

    Example: distillguard review reverse --data-dir ./dg case_3f2a9c1b7d4e --reason "university eval run, agreed"
    """
    _decide("reverse", case_id, reason, reviewer, config, data_dir, None, as_json)


@review_app.command("escalate")
def review_escalate(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    reason: Reason,
    reviewer: Reviewer = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the updated case as JSON.")] = False,
) -> None:
    """Hand a case to a senior reviewer; what applies to the accounts does not change.

    Example: distillguard review escalate --data-dir ./dg case_3f2a9c1b7d4e --reason "large customer, needs sign-off"
    """
    _decide("escalate", case_id, reason, reviewer, config, data_dir, None, as_json)


@review_app.command("appeal")
def review_appeal(
    case_id: Annotated[str, typer.Argument(help="The case id the customer quotes.")],
    account: Annotated[str, typer.Option("--account", "-a", help="The appealing account (a member of the case).")],
    message: Annotated[str, typer.Option("--message", "-m", help="The customer's appeal.")],
    contact: Annotated[str | None, typer.Option("--contact", help="How to reach the customer.")] = None,
    reviewer: Reviewer = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the appeal as JSON.")] = False,
) -> None:
    """File an appeal on a customer's behalf (support staff, named in the audit trail); a confirmed case is
    reopened for review.

    Example: distillguard review appeal --data-dir ./dg case_3f2a9c1b7d4e --account acme --message "eval job"
    """
    from distillguard.respond.book import CaseError

    book = _book(config, data_dir)
    try:
        filed = book.appeal(case_id, account, message, contact, filed_by=_reviewer(reviewer))
    except CaseError as exc:
        raise _case_failed(exc) from None
    if as_json:
        json_out(filed.to_json())
        return
    out.print(f"appeal {filed.appeal_id} filed on case {case_id} for account {escape(account)}")


@review_app.command("audit")
def review_audit(
    since: Annotated[int, typer.Option("--since", min=0, help="Only entries after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many entries.")] = 1000,
    verify: Annotated[
        bool, typer.Option("--verify", help="Recompute the whole hash chain instead; exit 1 if it is broken.")
    ] = False,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Print the audit trail (oldest first), or check its hash chain with --verify.

    Example: distillguard review audit --data-dir ./dg --verify
    """
    book = _book(config, data_dir)
    if verify:
        checked, broken = book.verify()
        if as_json:
            json_out({"checked": checked, "intact": broken is None, "first_broken": broken})
        if broken is not None:
            err.print(
                f"[red]audit trail broken at seq {broken}[/red]: the entry was changed, removed or inserted outside "
                f"distillguard ({checked} entries before it check out)"
            )
            raise typer.Exit(1)
        if not as_json:
            out.print(f"audit trail intact: {checked} entries checked")
        return
    entries = [e.to_json() for e in book.audit(since, limit)]
    if as_json:
        json_out(entries)
        return
    if not entries:
        out.print("no audit entries" + (f" after seq {since}" if since else ""))
        return
    out.print(_audit_table(entries))


@review_app.command("labels")
def review_labels(
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="JSONL file to write (default: stdout).")] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Write reviewers' decisions as JSONL labels: "attack" for a confirmation, "benign" for a reversal.

    Example: distillguard review labels --data-dir ./dg --out review-labels.jsonl
    """
    from distillguard.events.jsonl import write_jsonl

    rows = _book(config, data_dir).labels()
    if out_file is None or str(out_file) == "-":
        sys.stdout.flush()
        count = write_jsonl(rows, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with out_file.open("wb") as handle:
            count = write_jsonl(rows, handle)
    err.print(f"wrote {count} labels")


@review_app.command("import-campaigns")
def review_import_campaigns(
    clusters_file: Annotated[Path, typer.Argument(help="Campaigns file written by `distillguard analyze`.")],
    min_level: Annotated[
        LevelOption, typer.Option("--min-level", help="Open cases for campaigns judged at least this.")
    ] = "throttle",
    reviewer: Reviewer = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cases as JSON.")] = False,
) -> None:
    """Open a case for each campaign `analyze` found at or above --min-level; every member's standing moves.

    Every campaign of the file is also saved in the store, where the console shows it.

    Example: distillguard review import-campaigns --data-dir ./dg verdicts.clusters.jsonl --min-level degrade
    """
    from distillguard.clusters.report import read_campaigns
    from distillguard.clusters.store import parse_campaigns, save_campaigns
    from distillguard.respond.policy import RANK
    from distillguard.timefmt import utcnow

    name = _reviewer(reviewer)
    try:
        campaigns = parse_campaigns(read_campaigns(clusters_file))
    except (OSError, ValueError) as exc:
        raise fail(escape(str(exc))) from None
    chosen = [c for c in campaigns if RANK[c.verdict] >= RANK[min_level]]
    book = _book(config, data_dir)
    save_campaigns(book.engine, campaigns, utcnow())
    done = []
    for c in chosen:
        case = book.open_campaign_case(
            c.cluster_id, list(c.members), c.verdict, c.risk, c.kinds, actor=f"operator:{name}"
        )
        done.append({**case.to_json(), "opened": case.opened_at == case.updated_at})
    if as_json:
        json_out(done)
        return
    skipped = len(campaigns) - len(chosen)
    if not done:
        out.print(f"no campaign at or above {min_level} ({skipped} below)")
        return
    table = Table("case", "campaign", "members", "proposed", "applied", "risk", "", title="campaign cases")
    for row in done:
        shown = "" if row["risk"] is None else f"{row['risk']:.3f}"
        table.add_row(
            row["case_id"],
            escape(row["subject"]["id"]),
            str(len(row["members"])),
            row["proposed"],
            row["applied"],
            shown,
            "opened" if row["opened"] else "updated",
        )
    out.print(table)
    err.print(f"{len(done)} campaign cases ({skipped} campaigns below {min_level} skipped)")


# admin ----------------------------------------------------------------------------------------------
def _operator() -> str:
    return "operator:" + (os.environ.get("USER") or "cli")


@admin_token_app.command("create")
def admin_token_create(
    name: Annotated[str, typer.Option("--name", help="Who uses the token: the reviewer named in the audit trail.")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Issue an admin API token; it is printed once and stored only as a keyed hash.

    Example: distillguard admin token create --data-dir ./dg --name alice
    """
    from distillguard.respond.book import CaseError

    book = _book(config, data_dir)
    try:
        token_id, plaintext = book.create_admin_token(name, _operator())
    except CaseError as exc:
        raise _case_failed(exc) from None
    if as_json:
        json_out({"token_id": token_id, "name": name.strip(), "token": plaintext})
    else:
        err.print(
            f"admin token {token_id} for {escape(name.strip())} (shown once, it cannot be shown again; store it now):"
        )
        print(plaintext)


@admin_token_app.command("list")
def admin_token_list(config: ConfigFile = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List admin tokens (ids, names and state; never the tokens themselves).

    Example: distillguard admin token list --data-dir ./dg
    """
    rows = _book(config, data_dir).admin_tokens()
    if as_json:
        json_out(rows)
        return
    if not rows:
        out.print("no admin tokens")
        return
    table = Table("token id", "name", "created", "state")
    for r in rows:
        state = "revoked " + r["revoked_at"] if r["revoked_at"] else "active"
        table.add_row(r["token_id"], escape(r["name"]), r["created_at"], state)
    out.print(table)


@admin_token_app.command("revoke")
def admin_token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token id shown by `admin token list`.")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke an admin token; the admin API refuses it from the next call.

    Example: distillguard admin token revoke --data-dir ./dg 3f2a9c1b7d4e
    """
    from distillguard.respond.book import CaseError

    try:
        _book(config, data_dir).revoke_admin_token(token_id, _operator())
    except CaseError as exc:
        raise _case_failed(exc) from None
    err.print(f"revoked admin token {token_id}")


# watermark ------------------------------------------------------------------------------------------
RecordCheck = Annotated[
    bool, typer.Option("--record", help="Keep the result as a check in the store (console, evidence packs).")
]
CheckSubject = Annotated[
    str | None,
    typer.Option("--subject", help="What the check is about: account:ID, campaign:ID or model:NAME (with --record)."),
]


@watermark_app.command("detect")
def watermark_detect(
    source: Annotated[str, typer.Argument(help="A text file, or - for standard input.")],
    account: Annotated[
        list[str] | None, typer.Option("--account", "-a", help="Also try this account's key (repeatable).")
    ] = None,
    cluster: Annotated[
        list[str] | None, typer.Option("--cluster", help="Also try this campaign's key (a cluster id; repeatable).")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Call it watermarked at p <= alpha.")] = 1e-6,
    record: RecordCheck = False,
    subject: CheckSubject = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Test a text for the text watermark: score, positions scored, exact p-value and the matching key.

    Keys are derived from the deployment secret: the deployment's, plus those of the accounts named with --account
    and the campaigns named with --cluster (the p-value is corrected for every key tried). Exit status 0 when
    detected, 3 when not. --record keeps the result as a check about --subject (default: the one account or
    campaign named), listed in the console and carried by evidence packs.

    Example: distillguard watermark detect --data-dir ./dg leaked.txt --account acme --record
    """
    from distillguard.watermark.text import detect

    settings = load(config, data_dir)
    named = [f"account:{a}" for a in account or []] + [f"campaign:{c}" for c in cluster or []]
    recorded = _check_subject(subject or (named[0] if record and len(named) == 1 else None), record)
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {escape(source)}: {exc.strerror}") from None
    text = raw.decode("utf-8", "replace")
    if not 0 < alpha < 1:
        raise fail("--alpha must be between 0 and 1")
    watermarks = _watermarks(settings)
    result = detect(text, watermarks.keys_for(list(account or []), list(cluster or [])), alpha)
    payload = result.to_json()
    if recorded is not None:
        payload["check_id"] = _record_check(settings, "watermark", recorded, result.detected, result.p_value, payload)
    if as_json:
        json_out(payload)
    else:
        verdict = "[bold red]watermarked[/bold red]" if result.detected else "not detected"
        out.print(
            f"{verdict}: p = {result.p_value:.3g} (alpha {alpha:g}), {result.hits} of {result.scored} positions "
            f"agree with key {result.key_id} (expected {result.expected:.1f}), {result.keys_tried} tests"
        )
    raise typer.Exit(0 if result.detected else 3)


def _check_subject(subject: str | None, record: bool) -> tuple[str, str] | None:
    """The (kind, id) a check is recorded about, or None without --record; exit 2 on a malformed subject."""
    from distillguard.watermark.checks import CheckError, parse_subject

    problem = None
    if not record:
        if subject is None:
            return None
        problem = "--subject is only used with --record"
    elif subject is None:
        problem = "--record needs --subject account:ID, campaign:ID or model:NAME (what the check is about)"
    else:
        try:
            return parse_subject(subject)
        except CheckError as exc:
            problem = str(exc)
    err.print(f"[red]error:[/red] {escape(problem)}")
    raise typer.Exit(2)


def _record_check(
    settings: Settings, kind: str, subject: tuple[str, str], detected: bool, p_value: float, result: dict[str, Any]
) -> str:
    """Keep a check in the state store; tell the operator its id."""
    from distillguard.store import open_store
    from distillguard.watermark.checks import record_check

    store = open_store(settings.data_dir, settings.store_url, settings.secret)
    try:
        check_id = record_check(
            store.engine,
            kind=kind,
            subject_kind=subject[0],
            subject_id=subject[1],
            actor=_operator(),
            detected=detected,
            p_value=p_value,
            result={k: v for k, v in result.items() if k != "check_id"},
        )
    finally:
        store.close()
    err.print(f"recorded check {check_id} about {subject[0]} {escape(subject[1])}")
    return check_id


def _watermarks(settings: Settings) -> Watermarks:
    """The watermark keys of a deployment (derived from its secret, which must exist already)."""
    from distillguard.store.secret import SECRET_FILE, load_or_create_secret
    from distillguard.watermark.keys import Watermarks

    if not settings.secret and not (settings.data_dir / SECRET_FILE).is_file():
        raise fail(
            f"no deployment secret in {escape(str(settings.data_dir))}: the keys derive from it (give the gateway's "
            "--data-dir, or a configuration with `secret`)"
        )
    return Watermarks(settings.watermark, load_or_create_secret(settings.data_dir, settings.secret))


@provenance_app.command("test")
def provenance_test(
    endpoint: Annotated[str, typer.Option("--endpoint", help="The suspect's OpenAI-compatible base URL (…/v1).")],
    model: Annotated[str, typer.Option("--model", help="The suspect model's name at that endpoint.")],
    queries: Annotated[int, typer.Option("--queries", min=1, max=100_000, help="Probe prompts to send.")] = 2000,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Environment variable holding the endpoint's API key.")
    ] = None,
    account: Annotated[
        list[str] | None, typer.Option("--account", "-a", help="Also try this account's key (repeatable).")
    ] = None,
    cluster: Annotated[
        list[str] | None, typer.Option("--cluster", help="Also try this campaign's key (a cluster id; repeatable).")
    ] = None,
    restrict_to_served: Annotated[
        bool, typer.Option(help="Score only contexts that occur in the answers this deployment served.")
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 8,
    timeout_s: Annotated[float, typer.Option("--timeout", min=1, help="Per query, seconds.")] = 60.0,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the report (JSON) here.")] = None,
    record: RecordCheck = False,
    subject: CheckSubject = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Test whether a suspect model inherited our text watermark: probe it, score its answers, report a p-value.

    Exit status: 0 inherited (p <= 1e-6), 3 not detected, 4 inconclusive (the endpoint failed or gave nothing to
    score). The report (--out) holds the evidence and the queries used, for a case. --record keeps it as a check
    about --subject (default model:NAME of --model), listed in the console and carried by evidence packs.

    Example: distillguard provenance test --data-dir ./dg --endpoint http://suspect:8000/v1 --model m --queries 2000
    """
    from distillguard.watermark.provenance import examine, served_contexts

    settings = load(config, data_dir)
    recorded = _check_subject(subject or (f"model:{model}" if record else None), record)
    watermarks = _watermarks(settings)
    served = None
    if restrict_to_served:
        from distillguard.events.sqlite import EVENTS_DB, iter_events

        db = settings.data_dir / EVENTS_DB
        if not db.is_file():
            raise fail(f"no event log in {escape(str(settings.data_dir))} to restrict to")
        served = served_contexts(e.text for e in iter_events(db) if e.text)
    api_key = os.environ.get(api_key_env) if api_key_env else None
    report = examine(
        endpoint,
        model,
        watermarks.keys_for(list(account or []), list(cluster or [])),
        queries=queries,
        api_key=api_key,
        served=served,
        concurrency=concurrency,
        timeout_s=timeout_s,
    )
    payload = report.to_json()
    if recorded is not None:
        d = report.detection
        payload["check_id"] = _record_check(settings, "provenance", recorded, d.detected, d.p_value, payload)
    if out_file is not None:
        out_file.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    if as_json:
        json_out(payload)
    else:
        d = report.detection
        out.print(
            f"{report.verdict}: p = {d.p_value:.3g} over {d.scored} contexts ({d.hits} agree with key {d.key_id}, "
            f"{d.expected:.1f} expected); {report.queries_answered} of {report.queries_sent} queries answered"
            + (f", errors {report.errors}" if report.errors else "")
        )
    raise typer.Exit({"inherited": 0, "not_detected": 3}.get(report.verdict, 4))


# config ---------------------------------------------------------------------------------------------
@config_app.command("show")
def config_show(config: ConfigFile = None, data_dir: DataDir = None) -> None:
    """Print the effective configuration (file + environment + flags), secrets masked.

    Example: distillguard config show --config distillguard.toml
    """
    from distillguard.config import masked

    out.print_json(orjson.dumps(masked(load(config, data_dir))).decode())


def main() -> None:
    app()
