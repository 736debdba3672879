"""Configuration: TOML, then environment, then flags; invalid values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.config import ConfigError, load_settings, masked


def test_precedence_file_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "dg.toml"
    config.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[events]\ntext_mode = "hashed"\n')
    monkeypatch.setenv("DISTILLGUARD_SERVER__PORT", "9100")
    settings = load_settings(config)
    assert (settings.server.port, settings.server.host, settings.events.text_mode) == (9100, "0.0.0.0", "hashed")
    flagged = load_settings(config, **{"server.port": 9200, "server.host": None})
    assert (flagged.server.port, flagged.server.host) == (9200, "0.0.0.0")


def test_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLGUARD_CONFIG", raising=False)
    settings = load_settings()
    assert settings.server.port == 8080 and settings.limits.default_tier in settings.limits.tiers


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[server]\nport = 70000\n", "server.port"),
        ('[limits]\ndefault_tier = "nope"\n', "default_tier"),
        ('[limits.tiers.x.account]\nrequests = ["often"]\n', "not a rate limit"),
        ("[mystery]\nx = 1\n", "mystery"),
    ],
)
def test_invalid_configuration_names_the_field(tmp_path: Path, toml: str, needle: str) -> None:
    config = tmp_path / "dg.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=needle):
        load_settings(config)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_example_config_in_docs_is_valid() -> None:
    example = Path(__file__).parents[1] / "docs" / "distillguard.example.toml"
    settings = load_settings(example)
    assert settings.upstreams and settings.limits.tiers


def test_every_secret_is_masked_when_the_configuration_is_shown(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'secret = "s3cret-hmac"\nstore_url = "postgresql+psycopg://dg:pg-pass@db:5432/dg"\n'
        '[[upstreams]]\nbase_url = "mock"\napi_key = "sk-upstream"\n'
        '[intel]\ngroup_key = "group-key-material-of-32-bytes!!"\n[intel.hub]\npassword = "hub-pass"\n'
    )
    shown = masked(load_settings(config))
    text = str(shown)
    assert not any(s in text for s in ("s3cret-hmac", "sk-upstream", "group-key-material", "hub-pass", "pg-pass"))
    assert shown["store_url"] == "postgresql+psycopg://dg:***@db:5432/dg"
    assert shown["intel"]["group_key"] == shown["intel"]["hub"]["password"] == shown["upstreams"][0]["api_key"] == "***"
    assert shown["intel"]["tlp"] == "amber"  # the rest is shown as it is
