"""Evidence packs: export and verify round trip on SQLite and PostgreSQL, what a pack holds, tampering of every kind
caught, privacy rules honoured, bad destinations refused without leaving anything behind."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from distillguard import plots
from distillguard.cases import export as export_module
from distillguard.cases import manifest
from distillguard.cases.export import PackError, export_pack
from distillguard.cases.gather import Subject, SubjectNotFound
from distillguard.cases.verify import Verification, verify_pack
from distillguard.intel.member import load_signer
from distillguard.intel.signing import public_key_text
from tests.cases.conftest import (
    ANSWER,
    CLUSTER,
    CUSTOMER,
    CUSTOMER_IP,
    HARVESTER_IP,
    HARVESTERS,
    Deployment,
    build,
)

CAMPAIGN = Subject("campaign", CLUSTER)
FILES = {"case.json", "exchanges.jsonl", "audit.jsonl", "report.html"}


def read(pack: Path, name: str = "case.json") -> Any:
    return orjson.loads((pack / name).read_bytes())


def jsonl(pack: Path, name: str) -> list[Any]:
    return [orjson.loads(line) for line in (pack / name).read_bytes().splitlines()]


def trusted_key(d: Deployment) -> Any:
    return load_signer(d.settings.intel, d.data_dir).public_key


def failed(v: Verification) -> dict[str, str]:
    return {f.item: f.detail for f in v.findings if not f.ok}


def test_a_campaign_pack_round_trips_with_everything_about_the_case(tmp_path: Path, store_url: str) -> None:
    d = build(tmp_path / "dg", store_url)
    try:
        written = export_pack(d.settings, d.store, CAMPAIGN, tmp_path / "pack")
        pack = written.directory
        v = verify_pack(pack, trusted_key(d))
        assert v.ok and v.trusted, v.findings
        assert {p.name for p in pack.iterdir()} == FILES | {"manifest.json", "manifest.sig"}
        assert set(read(pack, "manifest.json")["files"]) == FILES

        doc = read(pack)
        assert doc["pack_version"] == manifest.PACK_VERSION and doc["subject"] == {"kind": "campaign", "id": CLUSTER}
        assert doc["deployment"]["public_key"] == public_key_text(trusted_key(d))
        assert sorted(a["account_id"] for a in doc["accounts"]) == HARVESTERS
        # The riskiest, then the most firmly linked, first (all three have the same risk; harv-3 is linked hardest).
        assert doc["accounts"][0]["account_id"] == "harv-3"
        first = doc["accounts"][0]
        assert first["profile"]["payment_fingerprint"] == "fp_77" and first["score"]["verdict"] == "block"
        assert [h["risk"] for h in first["history"]] == [0.35, 0.62, 0.93]
        assert first["standing"]["level"] == "degrade" and first["standing"]["case_id"] == d.case_id
        assert doc["campaign"]["verdict"] == "degrade" and doc["campaign"]["capabilities"] == {"math": 120, "code": 60}
        assert len(doc["campaign"]["links"]) == 3
        assert {e["kind"] for lk in doc["campaign"]["links"] for e in lk["evidence"]} == {"payment", "template"}
        assert doc["summary"]["calls"] == 135 and doc["summary"]["flagged_members"] == 3

        [case] = doc["cases"]
        assert case["case_id"] == d.case_id and case["appeals"][0]["message"].startswith("We are a university lab")
        [check] = doc["checks"]
        assert check["check_id"] == d.check_id and check["p_value"] == pytest.approx(3.2e-9) and check["detected"]
        assert [m["account_id"] for m in doc["intel_matches"]] == ["harv-1"]

        # The audit entries are the live chain's, with their positions and hashes, and every one recomputes.
        live = d.book.audit_about({d.case_id}, HARVESTERS)
        entries = jsonl(pack, "audit.jsonl")
        assert [(e["seq"], e["hash"], e["prev_hash"]) for e in entries] == [(e.seq, e.hash, e.prev_hash) for e in live]
        assert all(e["hash_ok"] for e in entries) and doc["audit"]["entries"] == entries
        assert doc["audit"]["chain_head"] == dict(zip(("seq", "hash"), d.book.chain_head(), strict=True))
        assert doc["audit"]["live_chain"]["whole"]
        assert {e["action"] for e in entries} >= {"campaign_case_opened", "level_escalated", "appeal_filed"}

        # Traffic: every member's calls, bucketed; samples: the most extraction-like and the most recent.
        series = doc["traffic"]["series"]
        assert sum(r["calls"] for r in series) == 135 and {r["account_id"] for r in series} == set(HARVESTERS)
        exchanges = jsonl(pack, "exchanges.jsonl")
        assert len(exchanges) == 15 and doc["exchanges"] == exchanges
        assert {x["account_id"] for x in exchanges} == set(HARVESTERS)
        assert sum(x["chosen"] == "extraction-like" for x in exchanges) == 9
        assert all(any(s.startswith("cot") for s in x["extraction_signals"]) for x in exchanges)
    finally:
        d.store.close()


def test_an_account_pack_holds_its_campaign_and_only_its_own_exchanges(deployment: Deployment, tmp_path: Path) -> None:
    pack = export_pack(deployment.settings, deployment.store, Subject("account", "harv-1"), tmp_path / "p").directory
    assert verify_pack(pack, trusted_key(deployment)).ok
    doc = read(pack)
    assert [a["account_id"] for a in doc["accounts"]] == ["harv-1"]
    assert doc["campaign"] is None and doc["campaigns"][0]["cluster_id"] == CLUSTER
    assert doc["campaigns"][0]["links"] and all("harv-1" in (lk["a"], lk["b"]) for lk in doc["campaigns"][0]["links"])
    assert doc["summary"]["verdict"] == "block" and doc["summary"]["level"] == "degrade"
    assert {x["account_id"] for x in doc["exchanges"]} == {"harv-1"}
    assert [c["case_id"] for c in doc["cases"]] == [deployment.case_id]
    html = (pack / "report.html").read_text()
    assert 'id="plot-graph"' in html and "Campaign links of harv-1" in html

    # A customer with no case has a pack too: its traffic, its score, no cases.
    doc = read(
        export_pack(deployment.settings, deployment.store, Subject("account", CUSTOMER), tmp_path / "c").directory
    )
    assert doc["cases"] == [] and doc["accounts"][0]["traffic"]["calls"] == 45 and doc["campaigns"] == []


class Links(HTMLParser):
    """Every URL a page would load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "data", "poster") and v]


def test_the_report_is_self_contained_and_holds_the_plots(deployment: Deployment, tmp_path: Path) -> None:
    pack = export_pack(deployment.settings, deployment.store, CAMPAIGN, tmp_path / "p").directory
    html = (pack / "report.html").read_text()
    parser = Links()
    parser.feed(html)
    assert all(u.startswith("#") for u in parser.urls), [u for u in parser.urls if not u.startswith("#")]
    assert not [a for t, a in parser.tags if t in ("script", "link", "img", "iframe") and ("src" in a or "href" in a)]
    assert plots.plotly_js()[:2000] in html  # plotly.js itself, inlined
    for plot in ("plot-risk", "plot-traffic", "plot-graph"):
        assert f'id="{plot}"' in html
    # The graph carries the evidence on its edges; the page names the signer's key and how to check it.
    assert "card fingerprint fp_77" in html and "distillguard case verify" in html
    assert read(pack)["deployment"]["public_key"] in html


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One campaign pack and the deployment's public key, copied by each tampering test."""
    root = tmp_path_factory.mktemp("sealed")
    d = build(root / "dg")
    try:
        pack = export_pack(d.settings, d.store, CAMPAIGN, root / "pack").directory
        return pack, trusted_key(d)
    finally:
        d.store.close()


@pytest.fixture
def pack(sealed: tuple[Path, Any], tmp_path: Path) -> Path:
    return Path(shutil.copytree(sealed[0], tmp_path / "pack"))


def test_the_untouched_copy_verifies(pack: Path, sealed: tuple[Path, Any]) -> None:
    assert verify_pack(pack, sealed[1]).trusted and verify_pack(pack, sealed[1]).ok


def test_a_modified_file_fails(pack: Path, sealed: tuple[Path, Any]) -> None:
    with (pack / "exchanges.jsonl").open("ab") as f:
        f.write(b'{"forged": true}\n')
    data = bytearray((pack / "case.json").read_bytes())
    data[data.index(b"harv-1")] = ord("H")  # same size, other bytes
    (pack / "case.json").write_bytes(bytes(data))
    v = verify_pack(pack, sealed[1])
    assert not v.ok and set(failed(v)) == {"exchanges.jsonl", "case.json"}
    assert "size" in failed(v)["exchanges.jsonl"] and "SHA-256" in failed(v)["case.json"]


def test_an_added_file_fails(pack: Path, sealed: tuple[Path, Any]) -> None:
    (pack / "extra").mkdir()
    (pack / "extra" / "note.txt").write_text("planted")
    v = verify_pack(pack, sealed[1])
    assert not v.ok and set(failed(v)) == {"extra", "extra/note.txt"}
    assert "not in the manifest" in failed(v)["extra/note.txt"]


def test_a_removed_file_fails(pack: Path, sealed: tuple[Path, Any]) -> None:
    (pack / "audit.jsonl").unlink()
    v = verify_pack(pack, sealed[1])
    assert not v.ok and failed(v) == {"audit.jsonl": "missing (listed in the manifest)"}


def test_a_modified_manifest_fails(pack: Path, sealed: tuple[Path, Any]) -> None:
    # Change a file and make the manifest agree with it: the signature no longer does.
    (pack / "report.html").write_text("<p>nothing to see</p>")
    body = read(pack, "manifest.json")
    sha256, size = manifest.file_digest(pack / "report.html")
    body["files"]["report.html"] = {"sha256": sha256, "bytes": size}
    (pack / "manifest.json").write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    v = verify_pack(pack, sealed[1])
    assert not v.ok and set(failed(v)) == {"manifest.sig"} and "altered" in failed(v)["manifest.sig"]


def test_a_missing_signature_or_manifest_fails(pack: Path, sealed: tuple[Path, Any]) -> None:
    (pack / "manifest.sig").unlink()
    assert failed(verify_pack(pack, sealed[1])) == {"manifest.sig": "missing: the pack is unsigned"}
    (pack / "manifest.json").write_text("[1, 2]")
    assert "unreadable" in failed(verify_pack(pack, sealed[1]))["manifest.json"]
    (pack / "manifest.json").unlink()
    assert "missing" in failed(verify_pack(pack))["manifest.json"]


def test_the_wrong_key_fails_and_a_forger_s_re_signed_pack_is_only_self_consistent(
    pack: Path, sealed: tuple[Path, Any]
) -> None:
    stranger = Ed25519PrivateKey.generate()
    v = verify_pack(pack, stranger.public_key())
    assert not v.ok and "not by the deployment's key" in failed(v)["signer"]
    # A forger alters a file and re-signs the whole pack with a key of their own.
    (pack / "exchanges.jsonl").write_text("")
    body = orjson.loads((pack / "manifest.json").read_bytes())
    rebuilt = manifest.build(
        pack,
        sorted(body["files"]),
        subject=body["subject"],
        created_at=body["created_at"],
        generator=body["generator"],
        deployment={"name": body["deployment"]["name"], "identity": body["deployment"]["identity"]},
        public_key=stranger.public_key(),
    )
    (pack / "manifest.json").write_bytes(rebuilt)
    (pack / "manifest.sig").write_bytes(manifest.sign(rebuilt, stranger))
    alone = verify_pack(pack)
    assert alone.ok and not alone.trusted and "SELF-CONSISTENT ONLY" in alone.verdict
    checked = verify_pack(pack, sealed[1])
    assert not checked.ok and "not by the deployment's key" in failed(checked)["signer"]


def all_text(pack: Path) -> str:
    return "".join(p.read_text() for p in pack.iterdir())


def test_exchanges_none_leaves_no_text_of_the_customers(deployment: Deployment, tmp_path: Path) -> None:
    settings = deployment.reload(**{"cases.exchanges": "none"})
    pack = export_pack(settings, deployment.store, CAMPAIGN, tmp_path / "p").directory
    text = all_text(pack)
    assert not [p for p in deployment.prompts if p in text] and ANSWER[:60] not in text
    exchanges = jsonl(pack, "exchanges.jsonl")
    assert len(exchanges) == 15
    assert all(m["text"] is None and m["chars"] > 0 for x in exchanges for m in x["request"]["messages"])
    assert all(x["response"]["text"] is None and x["response"]["sha256"] == "ab" * 32 for x in exchanges)
    assert read(pack)["privacy"]["exchanges"] == "none"


def test_truncated_exchanges_are_cut_and_say_so(deployment: Deployment, tmp_path: Path) -> None:
    settings = deployment.reload(**{"cases.truncate_chars": 100, "cases.samples_per_account": 2})
    pack = export_pack(settings, deployment.store, CAMPAIGN, tmp_path / "p").directory
    exchanges = jsonl(pack, "exchanges.jsonl")
    assert len(exchanges) == 6  # two per account
    assert all(len(m["text"]) <= 100 for x in exchanges for m in x["request"]["messages"])
    assert all(x["response"]["text"] == ANSWER[:100] and x["response"]["truncated"] for x in exchanges)
    assert all(x["response"]["chars"] == len(ANSWER) for x in exchanges)
    # --samples overrides the setting.
    again = export_pack(settings, deployment.store, CAMPAIGN, tmp_path / "q", samples=1).directory
    assert len(jsonl(again, "exchanges.jsonl")) == 3


def test_client_addresses_are_prefixes_unless_configured_in_full(deployment: Deployment, tmp_path: Path) -> None:
    pack = export_pack(deployment.settings, deployment.store, Subject("account", CUSTOMER), tmp_path / "p").directory
    text = all_text(pack)
    assert CUSTOMER_IP not in text and "198.51.100.0/24" in text
    settings = deployment.reload(**{"cases.client_ips": "full", "cases.exchanges": "full"})
    full = export_pack(settings, deployment.store, CAMPAIGN, tmp_path / "f").directory
    exchanges = jsonl(full, "exchanges.jsonl")
    assert {x["client"]["ip"] for x in exchanges} == {HARVESTER_IP}
    assert all(x["response"]["text"] == ANSWER for x in exchanges)


def test_the_pack_says_when_the_event_log_kept_only_hashes(deployment: Deployment, tmp_path: Path) -> None:
    settings = deployment.reload(**{"events.text_mode": "hashed"})
    doc = read(export_pack(settings, deployment.store, CAMPAIGN, tmp_path / "p").directory)
    assert doc["privacy"]["event_log_text_mode"] == "hashed"
    assert "only as a SHA-256 hash" in doc["privacy"]["statement"]


def test_unknown_subjects_are_refused_and_nothing_is_written(deployment: Deployment, tmp_path: Path) -> None:
    unknown = [(Subject("account", "nobody"), "no account 'nobody'"), (Subject("campaign", "clu_x"), "no campaign")]
    for subject, said in unknown:
        with pytest.raises(SubjectNotFound, match=said):
            export_pack(deployment.settings, deployment.store, subject, tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == [deployment.data_dir.name]


def test_an_occupied_destination_needs_force_and_a_failed_write_leaves_nothing(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(PackError, match="not empty"):
        export_pack(deployment.settings, deployment.store, CAMPAIGN, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    export_pack(deployment.settings, deployment.store, CAMPAIGN, out, force=True)
    assert verify_pack(out, trusted_key(deployment)).ok and not (out / "keep.txt").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackError, match="not a folder"):
        export_pack(deployment.settings, deployment.store, CAMPAIGN, tmp_path / "file")

    def broken(doc: dict[str, Any]) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "render", broken)
    with pytest.raises(OSError, match="No space"):
        export_pack(deployment.settings, deployment.store, CAMPAIGN, tmp_path / "new")
    with pytest.raises(OSError, match="No space"):
        export_pack(deployment.settings, deployment.store, CAMPAIGN, out, force=True)
    # The new pack was never placed, the old one is untouched, and no staging folder is left behind.
    assert not (tmp_path / "new").exists() and verify_pack(out, trusted_key(deployment)).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([deployment.data_dir.name, "out", "file"])
