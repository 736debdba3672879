"""``distillguard intel``: keys, export, push, pull, import, list, and feedback to partners."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from distillguard.clikit import AsJson, ConfigFile, DataDir, err, fail, json_out, load, out
from distillguard.config import Settings

intel_app = typer.Typer(
    help="Share campaign indicators with other providers: STIX 2.1 bundles over a TAXII 2.1 hub.",
    no_args_is_help=True,
)
TlpOption = Annotated[
    Literal["clear", "green", "amber", "amber+strict", "red"] | None,
    typer.Option("--tlp", help="TLP 2.0 level of the bundle (default: [intel] tlp)."),
]


def _member(settings: Settings) -> Any:
    from distillguard.intel.member import load_member
    from distillguard.intel.signing import SignatureError

    try:
        return load_member(settings.intel, settings.data_dir)
    except (SignatureError, ValueError, OSError) as exc:
        raise fail(escape(str(exc))) from None


def _intel_store(settings: Settings) -> Any:
    from distillguard.intel.store import IntelStore
    from distillguard.store import open_store

    return IntelStore(open_store(settings.data_dir, settings.store_url, settings.secret).engine)


@intel_app.command("keygen")
def keygen(
    config: ConfigFile = None,
    data_dir: DataDir = None,
    new_group_key: Annotated[
        bool, typer.Option("--new-group-key", help="Also print a fresh group key (one member makes it for all).")
    ] = False,
) -> None:
    """Make this member's signing key (once) and print what partners put in their [[intel.partners]].

    Example: distillguard intel keygen --data-dir ./dg --new-group-key
    """
    from distillguard.intel.privacy import GroupKey

    settings = load(config, data_dir)
    member = _member(settings)
    out.print("# give this to your partners (their [[intel.partners]] entry for you):")
    out.print("[[intel.partners]]", markup=False)
    out.print(f'name = "{settings.intel.provider_name}"', markup=False)
    out.print(f'identity = "{member.identity_id}"', markup=False)
    out.print(f'public_key = "{member.public_key}"', markup=False)
    out.print("weight = 0.6", markup=False)
    if new_group_key:
        err.print("new group key (share it only inside the group, out of band; put it in [intel] group_key):")
        out.print(GroupKey.generate(), markup=False)


@intel_app.command("export")
def export(
    campaigns_file: Annotated[Path, typer.Option("--campaigns", help="Campaigns file written by `analyze`.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Where to write the bundle (JSON).")],
    campaign: Annotated[list[str] | None, typer.Option("--campaign", help="Campaign (cluster) id; repeatable.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Campaigns active since this RFC 3339 time (without --campaign).")
    ] = None,
    min_level: Annotated[str, typer.Option("--min-level", help="Least verdict of campaigns chosen by --since.")] = (
        "throttle"
    ),
    events: Annotated[
        Path | None, typer.Option("--events", "-e", help="Event log (JSONL) `analyze` read; default: the data dir's.")
    ] = None,
    accounts: Annotated[Path | None, typer.Option("--accounts", help="Accounts file (JSONL) `analyze` read.")] = None,
    tlp: TlpOption = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Write a signed STIX 2.1 bundle of campaigns: keyed identifiers, template signatures, prefixes, counts.

    Example: distillguard intel export -d ./dg --campaigns verdicts.clusters.jsonl --campaign c0003 --out c3.json
    """
    from distillguard.clusters.report import read_campaigns
    from distillguard.intel.export import ExportPolicy, export_bundle, select_campaigns
    from distillguard.intel.privacy import GroupKeyError
    from distillguard.intel.validation import validation_errors

    if not campaign and since is None:
        raise fail("name campaigns with --campaign ID, or choose them with --since T")
    settings = load(config, data_dir)
    try:
        chosen = select_campaigns(read_campaigns(campaigns_file), campaign or [], since, min_level)
    except (OSError, ValueError, LookupError, KeyError) as exc:
        raise fail(escape(str(exc))) from None
    if not chosen:
        raise fail("no campaign matches; nothing to export")
    cfg = settings.intel
    policy = ExportPolicy(tlp or cfg.tlp, cfg.raw_examples, cfg.raw_examples_min_tlp, cfg.templates_per_campaign)
    member = _member(settings)
    try:
        member.group_key()  # before reading the log: without the key nothing can be exported
        bundle = export_bundle(settings, member, chosen, policy, datetime.now(UTC), events, accounts)
    except (GroupKeyError, FileNotFoundError) as exc:
        raise fail(escape(str(exc))) from None
    errors = validation_errors(bundle)
    if errors:
        raise fail("the bundle does not validate (not written): " + escape("; ".join(errors[:5])))
    out_path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
    kinds: dict[str, int] = {}
    for obj in bundle["objects"]:
        kinds[obj["type"]] = kinds.get(obj["type"], 0) + 1
    err.print(
        f"{len(chosen)} campaigns, {len(bundle['objects'])} objects ({', '.join(f'{v} {k}' for k, v in kinds.items())})"
        f", TLP:{policy.tlp.upper()}, written to {out_path}"
    )


def _read_bundle(path: Path) -> list[dict[str, Any]]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise fail(f"cannot read a bundle from {escape(str(path))}: {escape(str(exc))}") from None
    objects = data.get("objects") if isinstance(data, dict) else None
    if not isinstance(objects, list):
        raise fail(f"{escape(str(path))} is not a STIX bundle or TAXII envelope (no 'objects' list)")
    return objects


@intel_app.command("push")
def push(
    bundle: Annotated[Path, typer.Argument(help="Bundle written by `intel export` (or `intel report`).")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Send a bundle's objects to the hub collection in [intel.hub].

    Example: distillguard intel push c3.json --config dg.toml
    """
    from distillguard.intel.taxii import HubClient, HubError

    settings = load(config, data_dir)
    objects = _read_bundle(bundle)
    try:
        result = HubClient(settings.intel.hub).push(objects)
    except HubError as exc:
        raise fail(escape(str(exc))) from None
    if as_json:
        json_out(result.to_json())
    else:
        err.print(f"pushed {result.succeeded} of {result.total} objects; {len(result.failures)} refused")
    if result.failures:
        raise typer.Exit(1)


def _show_ingest(result: Any, as_json: bool) -> None:
    if as_json:
        json_out(result.to_json())
        return
    err.print(f"{result.accepted} new, {result.duplicates} already held, {len(result.rejected)} rejected")
    for object_id, reason in result.rejected[:10]:
        err.print(f"  rejected {escape(object_id)}: {escape(reason)}")


@intel_app.command("pull")
def pull(config: ConfigFile = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Read what the hub's collection gained since the last pull; verify each object's signature and keep it.

    Example: distillguard intel pull --config dg.toml
    """
    from distillguard.intel.runtime import pull_once, trusted_keys
    from distillguard.intel.taxii import HubError

    settings = load(config, data_dir)
    store = _intel_store(settings)
    try:
        result = pull_once(settings.intel, store, trusted_keys(settings.intel, _member(settings)))
    except HubError as exc:
        raise fail(escape(str(exc))) from None
    _show_ingest(result, as_json)


@intel_app.command("import")
def import_bundle(
    bundle: Annotated[Path, typer.Argument(help="A bundle a partner sent some other way (e-mail, a file share).")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Verify and keep a partner's bundle received without a hub.

    Example: distillguard intel import partner-bundle.json --config dg.toml
    """
    from distillguard.intel.runtime import trusted_keys

    settings = load(config, data_dir)
    result = _intel_store(settings).ingest(_read_bundle(bundle), trusted_keys(settings.intel, _member(settings)))
    _show_ingest(result, as_json)
    if result.rejected and not result.accepted:
        raise typer.Exit(1)


@intel_app.command("list")
def list_feed(config: ConfigFile = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """The partner indicators held: who reported them, what they match on, who vouched or disputed.

    Example: distillguard intel list --config dg.toml
    """
    from distillguard.intel.feed import build_feed
    from distillguard.timefmt import rfc3339, utcnow

    settings = load(config, data_dir)
    member = _member(settings)
    names = {p.identity: p.name for p in settings.intel.partners} | {member.identity_id: "(us)"}
    key_id = member.key.key_id if member.key is not None else None
    feed = build_feed(_intel_store(settings).objects(), key_id, rfc3339(utcnow()))
    rows = [
        {
            "indicator": ind.id,
            "reported_by": names.get(ind.creator, ind.creator),
            "kind": ind.kind,
            "values": len(ind.values),
            "campaign": ind.campaign,
            "vouched_by": sorted(names.get(v, v) for v in feed.vouched.get(ind.id, set())),
            "disputed_by": sorted(names.get(d, d) for d in feed.disputed.get(ind.id, {})),
        }
        for ind in feed.indicators.values()
    ]
    if as_json:
        json_out({"indicators": rows, "unusable": [{"id": i, "reason": r} for i, r in feed.skipped]})
        return
    table = Table("indicator", "reported by", "kind", "values", "campaign", "vouched", "disputed")
    for r in rows:
        table.add_row(
            r["indicator"],
            escape(r["reported_by"]),
            r["kind"],
            str(r["values"]),
            escape(r["campaign"]),
            escape(", ".join(r["vouched_by"])),
            escape(", ".join(r["disputed_by"])),
        )
    out.print(table)
    if feed.skipped:
        err.print(f"{len(feed.skipped)} indicators not usable (e.g. {escape(feed.skipped[0][1])})")


@intel_app.command("report")
def report(
    indicator: Annotated[str, typer.Argument(help="The partner indicator's id (see `intel list`).")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Where to write the bundle to push.")],
    seen: Annotated[int | None, typer.Option("--seen", help="We saw it too: in this many calls.")] = None,
    false_positive: Annotated[
        str | None, typer.Option("--false-positive", help="It matched legitimate traffic here: why.")
    ] = None,
    tlp: TlpOption = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Answer a partner's indicator: a sighting (corroborates it) or a false-positive report (disables it here).

    Example: distillguard intel report indicator--7d2c... --false-positive "our customer's support bot" -o fp.json
    """
    from distillguard.intel.feedback import false_positive as dispute
    from distillguard.intel.feedback import sighting
    from distillguard.intel.runtime import trusted_keys

    if (seen is None) == (false_positive is None):
        raise fail("give exactly one of --seen N or --false-positive REASON")
    settings = load(config, data_dir)
    member = _member(settings)
    level = tlp or settings.intel.tlp
    now = datetime.now(UTC)
    if seen is not None:
        obj = sighting(member, indicator, seen, now, now, level)
    else:
        obj = dispute(member, indicator, false_positive or "", now, level)
    # Kept here too: our own dispute takes the indicator out of our feed at once.
    _intel_store(settings).ingest([obj], trusted_keys(settings.intel, member))
    out_path.write_bytes(
        orjson.dumps({"type": "bundle", "id": f"bundle--{obj['id'].split('--')[1]}", "objects": [obj]})
    )
    err.print(f"{obj['type']} on {escape(indicator)} written to {out_path}; send it with `distillguard intel push`")
