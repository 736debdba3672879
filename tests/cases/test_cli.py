"""`distillguard case export` and `case verify`: exit codes, messages and JSON output, bad input answered with clear
errors (never a stack trace)."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.intel.member import load_signer
from distillguard.intel.signing import public_key_text
from tests.cases.conftest import CLUSTER, Deployment

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_export_then_verify(deployment: Deployment, tmp_path: Path) -> None:
    dg, pack = str(deployment.data_dir), tmp_path / "pack"
    code, output = run("case", "export", "--data-dir", dg, "--cluster", CLUSTER, "--out", str(pack), "--json")
    assert code == 0, output
    written = orjson.loads(output)
    assert written["accounts"] == 3 and written["subject"] == {"kind": "campaign", "id": CLUSTER}

    code, output = run("case", "verify", str(pack), "--data-dir", dg)
    assert code == 0 and "OK: intact, and signed by the deployment's key" in output
    key = public_key_text(load_signer(deployment.settings.intel, deployment.data_dir).public_key)
    assert run("case", "verify", str(pack), "--public-key", key)[0] == 0
    code, output = run("case", "verify", str(pack))
    assert code == 0 and "SELF-CONSISTENT ONLY" in output

    (pack / "audit.jsonl").write_text("")
    code, output = run("case", "verify", str(pack), "--data-dir", dg, "--json")
    report = orjson.loads(output)
    assert code == 1 and not report["ok"]
    assert [f["item"] for f in report["findings"] if not f["ok"]] == ["audit.jsonl"]
    code, output = run("case", "verify", str(pack), "--data-dir", dg)
    assert code == 1 and "FAILED" in output and "audit.jsonl" in output


def test_export_refuses_bad_requests_clearly(deployment: Deployment, tmp_path: Path) -> None:
    dg, out = str(deployment.data_dir), str(tmp_path / "out")
    code, output = run("case", "export", "--data-dir", dg, "--out", out)
    assert code == 2 and "exactly one of --cluster ID or --account ID" in output
    code, output = run("case", "export", "--data-dir", dg, "--out", out, "--cluster", CLUSTER, "--account", "a")
    assert code == 2
    code, output = run("case", "export", "--data-dir", dg, "--out", out, "--account", "nobody")
    assert code == 1 and "no account 'nobody'" in output
    code, output = run("case", "export", "--data-dir", str(tmp_path / "empty"), "--out", out, "--cluster", CLUSTER)
    assert code == 1 and "no state store" in output and not (tmp_path / "empty").exists()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    code, output = run("case", "export", "--data-dir", dg, "--out", out, "--cluster", CLUSTER)
    assert code == 1 and "--force" in output
    assert run("case", "export", "--data-dir", dg, "--out", out, "--cluster", CLUSTER, "--force")[0] == 0


def test_verify_refuses_bad_requests_clearly(deployment: Deployment, tmp_path: Path) -> None:
    code, output = run("case", "verify", str(tmp_path / "missing"))
    assert code == 2 and "is not a folder" in output
    code, output = run("case", "verify", str(tmp_path), "--public-key", "ed25519:not-a-key")
    assert code == 2 and "not an Ed25519 public key" in output
    code, output = run("case", "verify", str(tmp_path), "--public-key", "ed25519:x", "--data-dir", str(tmp_path))
    assert code == 2 and "not both" in output
    code, output = run("case", "verify", str(tmp_path), "--data-dir", str(tmp_path / "elsewhere"))
    assert code == 2 and "no signing key" in output
    code, output = run("case", "verify", str(tmp_path))
    assert code == 1 and "manifest.json" in output and "missing" in output
