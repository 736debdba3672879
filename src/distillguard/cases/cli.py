"""``distillguard case``: export an evidence pack about an account or a campaign, and verify one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from distillguard.clikit import AsJson, ConfigFile, DataDir, err, fail, json_out, load, out

case_app = typer.Typer(
    help="Evidence packs: a signed, self-contained folder about an account or a campaign, and its verification.",
    no_args_is_help=True,
)


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(2)


@case_app.command("export")
def export(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="The folder to write (must not exist or be empty).")],
    cluster: Annotated[str | None, typer.Option("--cluster", help="A campaign's cluster id.")] = None,
    account: Annotated[str | None, typer.Option("--account", "-a", help="An account id.")] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples", min=0, max=1000, help="Sample exchanges per account (default: cases.samples_per_account, 5)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out folder if it holds anything.")] = False,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Write an evidence pack: report.html (self-contained, with plots), case.json, exchanges.jsonl, audit.jsonl and
    a manifest of SHA-256 hashes signed with the deployment's key.

    Example: distillguard case export --data-dir ./dg --cluster clu_3f2a9c1b7d4e --out cases/clu_3f2a9c1b7d4e
    """
    from distillguard.cases.export import PackError, export_pack
    from distillguard.cases.gather import Subject, SubjectNotFound
    from distillguard.intel.signing import SignatureError
    from distillguard.store import open_store
    from distillguard.store.state import STATE_DB

    if (cluster is None) == (account is None):
        raise _usage("give exactly one of --cluster ID or --account ID")
    subject = Subject("campaign", cluster) if cluster is not None else Subject("account", account or "")
    if not subject.id.strip():
        raise _usage("the account or cluster id is empty")
    settings = load(config, data_dir)
    if settings.store_url is None and not (settings.data_dir / STATE_DB).is_file():
        raise fail(f"no state store in {escape(str(settings.data_dir))}: give the gateway's --data-dir or --config")
    store = open_store(settings.data_dir, settings.store_url, settings.secret)
    try:
        written = export_pack(settings, store, subject, out_dir, samples=samples, force=force)
    except (SubjectNotFound, PackError, SignatureError) as exc:
        raise fail(escape(str(exc))) from None
    except OSError as exc:
        raise fail(f"cannot write the pack to {escape(str(out_dir))}: {escape(exc.strerror or str(exc))}") from None
    finally:
        store.close()
    if as_json:
        json_out(written.to_json())
        return
    err.print(
        f"wrote the evidence pack about {subject.kind} {escape(subject.id)} to {escape(str(out_dir))}: "
        f"{written.accounts} account(s), {written.exchanges} sample exchanges, {written.audit_entries} audit entries"
    )
    err.print(f"signed with {written.public_key} (check it with `distillguard case verify`)")


@case_app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="The pack's folder.")],
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="The deployment's public key (ed25519:...), as `intel keygen` prints it."),
    ] = None,
    config: ConfigFile = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Check a pack: every file's hash and size, no file added or removed, and the manifest's signature — by the
    deployment's key when --public-key (or the deployment's --config/--data-dir) gives it. Exit status 0 when the
    pack checks, 1 when it does not, 2 on a usage error.

    Example: distillguard case verify cases/clu_3f2a9c1b7d4e --public-key ed25519:Qm9v...
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from distillguard.cases.verify import verify_pack
    from distillguard.intel.member import signing_key_path
    from distillguard.intel.signing import SignatureError, load_or_create_signing_key, parse_public_key

    if not directory.is_dir():
        raise _usage(f"{directory} is not a folder")
    trusted: Ed25519PublicKey | None = None
    if public_key is not None:
        if config is not None or data_dir is not None:
            raise _usage("give --public-key or --config/--data-dir, not both")
        try:
            trusted = parse_public_key(public_key)
        except SignatureError as exc:
            raise _usage(str(exc)) from None
    elif config is not None or data_dir is not None:
        settings = load(config, data_dir)
        path = signing_key_path(settings.intel, settings.data_dir)
        if not path.is_file():
            raise _usage(f"no signing key at {path}: this deployment has not signed anything yet")
        try:
            trusted = load_or_create_signing_key(path).public_key()
        except (SignatureError, ValueError) as exc:
            raise _usage(f"cannot read the signing key at {path}: {exc}") from None
    result = verify_pack(directory, trusted)
    if as_json:
        json_out(result.to_json())
    else:
        table = Table("item", "", "detail", title=f"evidence pack {escape(str(directory))}")
        for f in result.findings:
            table.add_row(escape(f.item), "[green]ok[/green]" if f.ok else "[red]FAIL[/red]", escape(f.detail))
        out.print(table)
        style = "red" if not result.ok else "green" if result.trusted else "yellow"
        out.print(f"[{style}]{escape(result.verdict)}[/{style}]")
    raise typer.Exit(0 if result.ok else 1)
