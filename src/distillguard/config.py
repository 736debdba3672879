"""One typed configuration: TOML file, then ``DISTILLGUARD_*`` environment variables, then CLI flags.

Precedence (highest first): values passed to :func:`load_settings` (the CLI flags), environment variables
(``DISTILLGUARD_SERVER__PORT=9000``; nested sections joined by ``__``), the TOML file named by ``--config`` or
``DISTILLGUARD_CONFIG``, then the defaults below. docs/configuration.md documents every field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from limits import parse_many

CONFIG_ENV = "DISTILLGUARD_CONFIG"


class ServerConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Peers whose X-Forwarded-For is believed; the client IP is the right-most address not in this list.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Header in which a trusted fronting proxy forwards the client's TLS fingerprint (JA3 or JA4), e.g.
    # "x-ja3-fingerprint"; believed only from trusted_proxies. Unset: no TLS fingerprint is recorded.
    tls_fingerprint_header: str | None = None
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_tokens_cap: int = Field(1_000_000, ge=1, description="largest max_tokens a request may ask for")
    graceful_shutdown_s: float = Field(30.0, ge=0)
    # How long a key lookup is cached; a revoked key stops working within this many seconds.
    auth_cache_ttl_s: float = Field(5.0, ge=0)
    # Gateway processes sharing the port, each with its own event loop (`serve --workers N`). More than one needs
    # limits on shared storage ([limits] storage_uri = "redis://..."), or each process would count on its own.
    workers: int = Field(1, ge=1, le=256)


class UpstreamConfig(BaseModel):
    name: str = "default"
    base_url: str = Field(description="OpenAI-compatible base URL including /v1, or 'mock' for the in-process mock")
    api_key: str | None = Field(None, repr=False)
    api_key_env: str | None = Field(None, description="environment variable holding the upstream key")
    # fnmatch patterns of model names this upstream serves; empty means every model.
    models: list[str] = Field(default_factory=list)
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0, description="longest silence from the upstream, per read")
    max_connections: int = Field(256, ge=1)

    def resolved_api_key(self) -> str | None:
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


class LimitSet(BaseModel):
    """Rate limits in the `limits` library's notation, e.g. ``["60/minute", "1000/day"]``."""

    requests: list[str] = Field(default_factory=list)
    tokens: list[str] = Field(default_factory=list)

    @field_validator("requests", "tokens")
    @classmethod
    def _parseable(cls, value: list[str]) -> list[str]:
        for spec in value:
            try:
                parse_many(spec)
            except ValueError as exc:
                raise ValueError(f"not a rate limit: {spec!r} (expected e.g. '60/minute')") from exc
        return value


class TierLimits(BaseModel):
    key: LimitSet = Field(default_factory=LimitSet)
    account: LimitSet = Field(default_factory=LimitSet)
    org: LimitSet = Field(default_factory=LimitSet)


def _default_tiers() -> dict[str, TierLimits]:
    return {
        "free": TierLimits(
            account=LimitSet(requests=["20/minute", "500/day"], tokens=["40000/minute", "1000000/day"]),
            org=LimitSet(requests=["60/minute"], tokens=["120000/minute"]),
        ),
        "standard": TierLimits(
            account=LimitSet(requests=["600/minute", "50000/day"], tokens=["1000000/minute", "50000000/day"]),
            org=LimitSet(requests=["3000/minute"], tokens=["5000000/minute"]),
        ),
        "enterprise": TierLimits(
            account=LimitSet(requests=["10000/minute"], tokens=["30000000/minute"]),
        ),
    }


class LimitsConfig(BaseModel):
    # "memory://": counters in the gateway process. "redis://host:port/db" (or rediss://, unix://): shared by every
    # gateway process and replica, exact across them.
    storage_uri: str = "memory://"
    default_tier: str = "standard"
    tiers: dict[str, TierLimits] = Field(default_factory=_default_tiers)
    # Tokens reserved for the completion when a request names no max_tokens.
    default_completion_reserve: int = Field(1024, ge=0)
    # Longest wait for the shared storage per call; past it, fail_mode applies (the call is not held longer).
    storage_timeout_ms: float = Field(50.0, gt=0, le=10_000)
    # Shared storage down or slow: "open" admits the call unlimited (logged once per outage, counted in
    # distillguard_limits_fail_mode_calls_total), "closed" refuses it with 503 rate_limiter_unavailable.
    fail_mode: Literal["open", "closed"] = "open"

    @field_validator("storage_uri")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "unix://")):
            raise ValueError(f"unsupported limits storage {value!r}: use memory:// or redis://host:port/db")
        return value

    @model_validator(mode="after")
    def _default_tier_exists(self) -> LimitsConfig:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not among tiers {sorted(self.tiers)}")
        return self


class EventsConfig(BaseModel):
    # full: keep completion text; truncated: first `truncate_chars`; hashed: SHA-256 only.
    text_mode: Literal["full", "truncated", "hashed"] = "full"
    truncate_chars: int = Field(2000, ge=0)
    batch_size: int = Field(512, ge=1)
    flush_interval_ms: int = Field(200, ge=1, description="bound on events lost to kill -9")
    queue_max: int = Field(200_000, ge=1)
    # Where events go: "sqlite" (data_dir/events.db, embedded) or "redis" (a Redis Stream that `distillguard ingest`
    # archives; docs/events.md). The SQLite sink refuses calls when its queue is full; the stream sink drops the
    # oldest queued events instead (counted), so a Redis outage never stops the API.
    sink: Literal["sqlite", "redis"] = "sqlite"
    stream_url: str | None = Field(None, description="redis:// URL of the event stream (sink = 'redis')")
    stream_name: str = "distillguard:events"
    # Approximate MAXLEN of the stream, so Redis memory stays bounded; entries trimmed before the ingest read them
    # are lost: size it for the ingest lag you accept (peak events/s x longest ingest outage). None: never trim.
    stream_maxlen: int | None = Field(1_000_000, ge=1)
    # Longest wait at shutdown for the queue to reach the stream (Redis down: what is left is counted as dropped).
    stream_close_timeout_s: float = Field(10.0, ge=0)
    # With sink = "redis": the Parquet archive the ingest workers write (`distillguard ingest --out`, which defaults
    # to it). The console and evidence packs read an account's calls from it; traffic comes from the rollups the
    # workers keep in the state store. Unset: no calls to show.
    archive_dir: Path | None = None

    @model_validator(mode="after")
    def _stream_has_url(self) -> EventsConfig:
        if self.sink == "redis" and not self.stream_url:
            raise ValueError("sink 'redis' needs stream_url (e.g. redis://127.0.0.1:6379/0)")
        return self


class DetectConfig(BaseModel):
    # Score accounts online in the gateway (signals per request, state per account, verdicts).
    enabled: bool = True
    # Risk model artefact; unset: the one shipped in the package. "rules" scores with the transparent rules only.
    model: str | None = None
    rescore_every: int = Field(8, ge=1, description="rescore an account every N of its calls")
    flush_interval_ms: int = Field(50, ge=1, description="how often queued accounts are rescored")
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"watch": 0.3, "throttle": 0.5, "degrade": 0.7, "challenge": 0.85, "block": 0.95}
    )
    # Where account state lives. "" (the default): in each process, which scores the calls it served. A Redis URL
    # (redis://host:6379/0): shared by every replica and worker, so each account is scored on all its calls
    # (docs/deployment.md, "Online state shared in Redis").
    state_url: str = ""
    state_prefix: str = "distillguard:online"
    # An account idle this long leaves Redis (its state starts afresh on its next call).
    state_ttl_s: int = Field(14 * 86_400, ge=60)
    # Longest wait for Redis in a rescoring round (off the request path); a failed round keeps its calls buffered.
    state_timeout_ms: float = Field(500.0, gt=0, le=60_000)
    # Calls buffered while Redis is unreachable, at most; newer ones are dropped from scoring (and counted).
    max_pending_calls: int = Field(100_000, ge=100)
    # Newest scores kept in the process for the request path (least recently scored leave first).
    cache_accounts: int = Field(100_000, ge=100)

    @field_validator("state_url")
    @classmethod
    def _redis_or_empty(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"unsupported state_url {value!r}: leave it empty, or use redis://host:port/db")
        return value

    @field_validator("thresholds")
    @classmethod
    def _ordered(cls, value: dict[str, float]) -> dict[str, float]:
        order = ["watch", "throttle", "degrade", "challenge", "block"]
        unknown = set(value) - set(order)
        if unknown:
            raise ValueError(f"unknown verdicts {sorted(unknown)}; expected {order}")
        levels = [value[v] for v in order if v in value]
        if levels != sorted(levels) or any(not 0 <= x <= 1 for x in levels):
            raise ValueError("thresholds must lie in [0, 1] and rise from watch to block")
        return value


Level = Literal["allow", "watch", "throttle", "degrade", "challenge", "block"]
Action = Literal["watch", "throttle", "tarpit", "degrade", "challenge", "block"]


def _default_actions() -> dict[str, list[Action]]:
    return {
        "watch": ["watch"],
        "throttle": ["throttle"],
        "degrade": ["throttle", "degrade"],
        "challenge": ["challenge"],
        "block": ["block"],
    }


class ThrottleConfig(LimitSet):
    """The tighter limits of a throttled account, on top of its tier's (``limits`` notation)."""

    requests: list[str] = Field(default_factory=lambda: ["10/minute", "300/day"])
    tokens: list[str] = Field(default_factory=lambda: ["20000/minute", "500000/day"])


class DegradeConfig(BaseModel):
    """What "degrade" does to a flagged account's calls (respond/degrade.py)."""

    # What happens to reasoning traces (`reasoning_content` / `reasoning` of messages and stream deltas):
    # "drop" removes them, "summarise" keeps the first `summary_chars` characters then " […]", "keep" leaves them.
    reasoning: Literal["drop", "summarise", "keep"] = "drop"
    summary_chars: int = Field(200, ge=0)
    # Requests for log-probabilities: "drop" removes the parameters, "refuse" answers 400, "keep" passes them.
    logprobs: Literal["drop", "refuse", "keep"] = "drop"
    max_tokens_cap: int | None = Field(1024, ge=1)  # None: no cap
    n_cap: int | None = Field(1, ge=1)  # None: no cap


class ReviewConfig(BaseModel):
    # A level at or above this opens a case for human review.
    open_case_at: Level = "degrade"
    # The strongest level applied without a reviewer: above it, the account gets this level until a reviewer
    # confirms the case (then the proposed level applies) or reverses it.
    automatic_up_to: Level = "degrade"
    # After a reversal, detection does not act on the account again for this long (the reviewer's call stands).
    reversal_exempt_days: float = Field(30.0, ge=0)


class AllowlistConfig(BaseModel):
    """Verified organisations and known evaluation partners: never acted on (what would have happened is logged)."""

    orgs: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)


class RespondConfig(BaseModel):
    # Act on verdicts in the gateway. "shadow": decide and log what would have happened, change nothing.
    enabled: bool = True
    mode: Literal["enforce", "shadow"] = "enforce"
    # What each level does; levels: watch, throttle, degrade, challenge, block (the detector's verdicts).
    actions: dict[str, list[Action]] = Field(default_factory=_default_actions)
    # Hysteresis: a level is relaxed only once the risk is this far below its threshold and it held min_hold_s.
    hysteresis: float = Field(0.1, ge=0, le=1)
    min_hold_s: float = Field(600.0, ge=0)
    # An automatic level lapses when no score has supported it for this long (reviewer-confirmed ones hold).
    expire_after_s: float = Field(86400.0, gt=0)
    tarpit_ms: int = Field(2000, ge=0, le=60_000)
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig)
    degrade: DegradeConfig = Field(default_factory=DegradeConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    allowlist: AllowlistConfig = Field(default_factory=AllowlistConfig)
    # A verified account has met the challenge: it gets the level below (degrade) instead.
    verified_passes_challenge: bool = True
    # Where a challenged customer verifies their organisation (said in the 403 message).
    verify_url: str = "https://example.com/verify-organization"
    # If the scorer or the response store is unavailable: "open" serves (and reports it), "closed" refuses with 503.
    fail_mode: Literal["open", "closed"] = "open"
    # A scorer that has not finished a rescoring round for this long counts as unavailable.
    scorer_stale_s: float = Field(10.0, gt=0)
    # How often a gateway reads changes made elsewhere (reviews from the CLI, other replicas).
    sync_interval_s: float = Field(1.0, gt=0)

    @field_validator("actions")
    @classmethod
    def _known_levels(cls, value: dict[str, list[Action]]) -> dict[str, list[Action]]:
        unknown = set(value) - {"watch", "throttle", "degrade", "challenge", "block"}
        if unknown:
            raise ValueError(f"unknown levels {sorted(unknown)}; expected watch, throttle, degrade, challenge, block")
        return value


class WatermarkConfig(BaseModel):
    """The text watermark on answers (docs/watermark.md)."""

    # Mark every answer. Off by default: it rewrites customers' answers (meaning-preserving word choices).
    enabled: bool = False
    strength: Literal["standard", "strong"] = "standard"
    # The spacing channels (one or two spaces between sentences, a trailing space at a sentence's line end): invisible
    # once Markdown or HTML is rendered, and most of the capacity of a short answer (docs/watermark.md). Off: the
    # watermark changes words only, and needs about 2,000 words instead of 300 for a confident detection.
    spacing: bool = True
    # "deployment": one key for all; "account": a key per account, so a leaked text names its account; "cluster":
    # the campaign's key for accounts taken in with a campaign case (else the account's), so one key finds a leak
    # from any member.
    key_scope: Literal["deployment", "account", "cluster"] = "deployment"
    # Accounts the response degrades are always marked at this strength, with their campaign's key if they were taken
    # in with one, else their own account key.
    flagged_strength: Literal["standard", "strong"] = "strong"


class PartnerConfig(BaseModel):
    """A member of the sharing group whose reports we accept (docs/intel.md)."""

    name: str
    # The partner's STIX identity id and Ed25519 public key, as its `distillguard intel keygen` printed them.
    identity: str = Field(pattern=r"^identity--[0-9a-f-]{36}$")
    public_key: str
    # How much one report of this partner moves risk, 0..1.
    weight: float = Field(0.6, ge=0, le=1)


class HubClientConfig(BaseModel):
    # TAXII 2.1 API root of the hub, e.g. "http://hub.example:9400/taxii2/api/".
    url: str | None = None
    collection: str | None = Field(None, description="id of the hub collection to push to and pull from")
    username: str | None = None
    password: str | None = Field(None, repr=False)
    password_env: str | None = Field("DISTILLGUARD_INTEL_PASSWORD", description="environment variable with it")
    timeout_s: float = Field(10.0, gt=0)

    def resolved_password(self) -> str | None:
        if self.password:
            return self.password
        return os.environ.get(self.password_env) if self.password_env else None


class IntelConfig(BaseModel):
    """Threat intelligence shared with other providers (docs/intel.md)."""

    # Match partner indicators in detection (requires a group key and at least one partner).
    enabled: bool = False
    provider_name: str = "distillguard deployment"
    # The sharing group's HMAC key (hex or a 32+ byte passphrase), or a file holding it.
    group_key: str | None = Field(None, repr=False)
    group_key_file: str | None = None
    # This member's Ed25519 signing key (PEM), relative to data_dir; made on first use.
    signing_key_file: str = "intel/signing.key"
    # TLP 2.0 level of exported bundles; raw example prompts are included only when `raw_examples` is on and the
    # level is at least `raw_examples_min_tlp`.
    tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"
    raw_examples: bool = False
    raw_examples_min_tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber+strict"
    # A template is shared only when at most this many accounts outside the campaign sent it (popular templates
    # would make partners match ordinary users).
    template_max_outside_accounts: int = Field(2, ge=0)
    templates_per_campaign: int = Field(20, ge=1)
    hub: HubClientConfig = Field(default_factory=HubClientConfig)
    # Pull the hub this often from `serve` (0: never; `distillguard intel pull` pulls by hand); as often,
    # reviewers' decisions are reported to partners.
    pull_interval_s: float = Field(300.0, ge=0)
    # Tell partners what reviewers decided about accounts their indicators matched (intel/reviews.py): a reversed
    # case disputes each such indicator (a false-positive report, effective here at once), a confirmed one sights it.
    review_feedback: bool = True
    partners: list[PartnerConfig] = Field(default_factory=list)


class ClustersConfig(BaseModel):
    """Campaign clustering in `serve`, over the recent event log, in a process of its own (docs/clusters.md)."""

    enabled: bool = True
    # Every interval (the first one interval after start), the accounts active in the last `lookback_h` hours are
    # linked into campaigns; the campaigns are saved for the console and those judged at `respond.review.open_case_at`
    # or above get a campaign case.
    interval_s: float = Field(300.0, ge=1)
    lookback_h: float = Field(24.0, gt=0)
    # The window is cut to its newest `max_events` events (a run holds a profile of every account in memory).
    max_events: int = Field(1_000_000, ge=1000)
    # Campaigns with fewer members are not saved (the clustering never forms one of fewer than 3).
    min_size: int = Field(3, ge=3)
    # The worker's niceness (0-19): clustering is batch work and yields the CPU to the gateway's calls. On a machine
    # kept busy by other work a high niceness can starve it; each run's duration is in the metrics.
    niceness: int = Field(10, ge=0, le=19)


class ConsoleConfig(BaseModel):
    """The analysts' web console (docs/console.md), served by `serve` under ``path`` and by `distillguard console`."""

    enabled: bool = True
    path: str = Field("/console", pattern=r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
    # How long a login lasts; the admin token is also re-checked (revocation ends the session within
    # token_recheck_s).
    session_ttl_s: float = Field(8 * 3600.0, ge=60, le=30 * 86400)
    token_recheck_s: float = Field(5.0, ge=0, le=300)
    # Mark the session cookie Secure even when the request arrived over plain HTTP (behind a TLS-terminating proxy);
    # requests that arrive over HTTPS always get it.
    cookie_secure: bool = False
    # How often the accounts table asks for fresh rows (seconds).
    refresh_interval_s: float = Field(2.0, ge=0.5, le=3600)
    page_size: int = Field(50, ge=10, le=500)
    # The most recent calls of an account shown with their text, and the calls read for the evidence of its reasons.
    sample_exchanges: int = Field(20, ge=1, le=200)
    evidence_calls: int = Field(500, ge=10, le=10_000)


class CasesConfig(BaseModel):
    """Evidence packs (docs/cases.md): how much of the customers' own exchanges and addresses a pack may carry."""

    # Sample exchanges' prompts and answers: as the event log kept them, cut to `truncate_chars`, or no text at all
    # (their times, models, token counts and signals are always there).
    exchanges: Literal["full", "truncated", "none"] = "truncated"
    truncate_chars: int = Field(500, ge=1, le=1_000_000)
    # Exchanges sampled per account: the most extraction-like and the most recent (`case export --samples`).
    samples_per_account: int = Field(5, ge=0, le=1000)
    # Client addresses in full, or reduced to their network (/24 for IPv4, /48 for IPv6).
    client_ips: Literal["full", "prefix"] = "prefix"


class AnalyzeConfig(BaseModel):
    """`distillguard analyze`: which engine aggregates the events, and where Spark runs (docs/deployment.md)."""

    # "embedded": this process; "spark": Spark jobs over the Parquet archive (needs distillguard[spark]).
    engine: Literal["embedded", "spark"] = "embedded"
    # local[*] (this machine), spark://host:7077, yarn, k8s://…
    spark_master: str = "local[*]"
    # Extra Spark settings, e.g. {"spark.executor.memory" = "8g"}; `--spark-conf key=value` adds to them.
    spark_conf: dict[str, str] = Field(default_factory=dict)


class LoggingConfig(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISTILLGUARD_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path("./distillguard-data")
    # SQLAlchemy URL of the state store (keys, accounts); default: SQLite in data_dir/state.db.
    store_url: str | None = None
    # HMAC key for API-key hashes; a random one is made in data_dir/secret.key when unset.
    secret: str | None = Field(None, repr=False)
    server: ServerConfig = Field(default_factory=ServerConfig)
    upstreams: list[UpstreamConfig] = Field(default_factory=list)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    respond: RespondConfig = Field(default_factory=RespondConfig)
    watermark: WatermarkConfig = Field(default_factory=WatermarkConfig)
    intel: IntelConfig = Field(default_factory=IntelConfig)
    clusters: ClustersConfig = Field(default_factory=ClustersConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    cases: CasesConfig = Field(default_factory=CasesConfig)
    analyze: AnalyzeConfig = Field(default_factory=AnalyzeConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get(CONFIG_ENV)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)


def masked(model: BaseModel) -> dict[str, Any]:
    """``model`` as JSON with every secret field (declared ``repr=False``) shown as ``***`` when set, and the password
    of any URL-valued field (``store_url``, ``storage_uri``, …) replaced by ``***``."""
    out: dict[str, Any] = model.model_dump(mode="json")
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, str) and "://" in value:
            out[name] = _masked_url(value)
        elif not info.repr:
            out[name] = "***" if value else value
        elif isinstance(value, BaseModel):
            out[name] = masked(value)
        elif isinstance(value, list):
            out[name] = [masked(v) if isinstance(v, BaseModel) else out[name][i] for i, v in enumerate(value)]
    return out


def _masked_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}{port}"))


class ConfigError(Exception):
    """The configuration file or an override is invalid; the message says which field and why."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config_file`` (or ``$DISTILLGUARD_CONFIG``), the environment and ``overrides``.

    ``overrides`` are dotted paths (``server.port``) or top-level names; ``None`` values are ignored so
    unset CLI flags do not mask the file or the environment.
    """
    from pydantic import ValidationError

    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        parts = dotted.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    previous = os.environ.get(CONFIG_ENV)
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        os.environ[CONFIG_ENV] = str(config_file)
    try:
        settings = _merge_sections(nested)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop(CONFIG_ENV, None)
            else:
                os.environ[CONFIG_ENV] = previous
    return settings


def _merge_sections(nested: dict[str, Any]) -> Settings:
    """Build settings so that a flag for one field of a section keeps the section's other fields from file/env."""
    base = Settings()
    if not nested:
        return base
    merged = base.model_dump()
    for key, value in nested.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return Settings.model_validate(merged)


def _describe(exc: Any) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)
