"""The intel commands without a hub: keygen, export, import, list, report (a bundle handed over as a file)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson

from tests.intel import campaign as world
from tests.support.processes import cli


def deployment(root: Path, name: str, partners: list[dict[str, object]]) -> tuple[Path, Path]:
    root.mkdir()
    config = root / "dg.toml"
    lines = ["[intel]", f'provider_name = "{name}"', f'group_key = "{world.GROUP_KEY}"']
    for p in partners:
        lines += ["[[intel.partners]]", *(f"{k} = {json.dumps(v)}" for k, v in p.items())]
    config.write_text("\n".join(lines) + "\n")
    return config, root / "data"


def test_a_bundle_handed_over_as_a_file_is_verified_listed_and_disputed(tmp_path: Path) -> None:
    a_config, a_data = deployment(tmp_path / "a", "Provider A", [])
    printed = cli("intel", "keygen", "--config", str(a_config), data_dir=a_data).stdout
    entry = {
        "name": "Provider A",
        "identity": re.search(r'identity = "([^"]+)"', printed).group(1),  # type: ignore[union-attr]
        "public_key": re.search(r'public_key = "([^"]+)"', printed).group(1),  # type: ignore[union-attr]
    }
    with (tmp_path / "events.jsonl").open("wb") as f:
        for e in world.events():
            f.write(orjson.dumps(e.to_json()) + b"\n")
    with (tmp_path / "accounts.jsonl").open("wb") as f:
        for account in world.accounts().values():
            f.write(orjson.dumps(account.to_json()) + b"\n")
    campaigns = tmp_path / "campaigns.jsonl"
    campaigns.write_bytes(orjson.dumps(world.campaign()) + b"\n")
    bundle = tmp_path / "bundle.json"
    cli(
        "intel", "export", "--config", str(a_config), "--campaigns", str(campaigns), "--campaign", "clu_test0001",
        "-e", str(tmp_path / "events.jsonl"), "--accounts", str(tmp_path / "accounts.jsonl"), "--out", str(bundle),
        data_dir=a_data,
    )  # fmt: skip

    b_config, b_data = deployment(tmp_path / "b", "Provider B", [entry])
    imported = json.loads(
        cli("intel", "import", str(bundle), "--json", "--config", str(b_config), data_dir=b_data).stdout
    )
    assert imported["accepted"] > 0 and imported["rejected"] == []
    held = json.loads(cli("intel", "list", "--json", "--config", str(b_config), data_dir=b_data).stdout)["indicators"]
    card = next(i for i in held if i["kind"] == "payment_fingerprint")
    assert card["reported_by"] == "Provider A" and card["campaign"] == "clu_test0001"

    # B disputes the card indicator: the opinion is written for pushing, and B's own feed shows it disputed.
    opinion = tmp_path / "fp.json"
    cli(
        "intel", "report", card["indicator"], "--false-positive", "our customer's billing card", "--out", str(opinion),
        "--config", str(b_config), data_dir=b_data,
    )  # fmt: skip
    (obj,) = json.loads(opinion.read_text())["objects"]
    assert (
        obj["type"] == "opinion" and obj["opinion"] == "strongly-disagree" and obj["object_refs"] == [card["indicator"]]
    )
    after = json.loads(cli("intel", "list", "--json", "--config", str(b_config), data_dir=b_data).stdout)["indicators"]
    assert next(i for i in after if i["indicator"] == card["indicator"])["disputed_by"] == ["(us)"]

    # A deployment that does not trust A rejects every object A signed, and says why.
    c_config, c_data = deployment(tmp_path / "c", "Provider C", [])
    result = cli("intel", "import", str(bundle), "--json", "--config", str(c_config), data_dir=c_data, check=False)
    rejected = json.loads(result.stdout)
    assert (
        result.returncode == 1
        and rejected["accepted"] == 0
        and "not a trusted member" in rejected["rejected"][0]["reason"]
    )


def test_export_refuses_without_a_group_key_or_a_campaign(tmp_path: Path) -> None:
    campaigns = tmp_path / "campaigns.jsonl"
    campaigns.write_bytes(orjson.dumps(world.campaign()) + b"\n")
    no_choice = cli("intel", "export", "--campaigns", str(campaigns), "--out", str(tmp_path / "b.json"), check=False)
    assert no_choice.returncode == 1 and "--campaign" in no_choice.stderr
    unknown = cli(
        "intel", "export", "--campaigns", str(campaigns), "--campaign", "nope", "--out", str(tmp_path / "b.json"),
        data_dir=tmp_path / "d", check=False,
    )  # fmt: skip
    assert unknown.returncode == 1 and "no campaign nope" in unknown.stderr
    out = str(tmp_path / "b.json")
    no_key = cli(
        "intel", "export", "--campaigns", str(campaigns), "--campaign", "clu_test0001", "--out", out,
        data_dir=tmp_path / "d", check=False,
    )  # fmt: skip
    assert no_key.returncode == 1 and "group key" in no_key.stderr and not (tmp_path / "b.json").exists()
