"""Account features: a bounded streaming state per account, updated once per event, read as a feature vector.

The same state serves the gateway (updated per request, read for the next one) and the batch analyzer (events
replayed in time order), so online and batch scores agree by construction. Memory per account is bounded: the
template and content sets stop growing at fixed caps (features then describe the first N distinct items, which
is what the extraction signature needs: few templates, many distinct contents).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from distillguard.detect.signals import DOMAINS, RequestSignals

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
# What the bounded state keeps of an account: the first N distinct items of each kind (batch engines that
# aggregate elsewhere keep the same ones, distillguard.batch.features).
TEMPLATE_CAP = 512
CONTENT_CAP = 4096
MODEL_CAP = 32
LANGUAGE_CAP = 64
SYSTEM_PROMPT_CAP = 64
ACTIVE_HOURS_CAP = 24 * 366
# Models the clock remembers (a later model's release time is the time of each of its calls).
CLOCK_MODEL_CAP = 10_000
# "Busy": this many calls in one minute, the pace of a script rather than a person.
BUSY_MINUTE_CALLS = 10
LONG_MAX_TOKENS = 4096
# A model counts as newly released when the whole log first sees it this long after the log began.
NEW_MODEL_AFTER_US = DAY_US
PIVOT_WINDOW_US = 24 * HOUR_US

FEATURES: tuple[str, ...] = (
    "log_events",
    "log_tokens",
    "events_per_active_hour",
    "account_age_days",
    "events_per_age_day",
    "verified",
    "gap_cv",
    "hour_entropy",
    "active_hours_share",
    "top_template_share",
    "distinct_template_ratio",
    "content_novelty",
    "repeat_share",
    "domain_count",
    "domain_entropy",
    "single_turn_share",
    "cot_share",
    "training_data_share",
    "rubric_share",
    "logprob_harvest_share",
    "benchmark_share",
    "tools_share",
    "system_prompt_share",
    "distinct_system_prompts",
    "long_max_tokens_share",
    "temperature_zero_share",
    "out_in_ratio",
    "language_count",
    "rate_limited_share",
    "busy_minute_share",
    "new_model_pivot",
)


@dataclass(slots=True)
class ModelClock:
    """When the whole traffic first saw each model: tells a newly released model from an old one."""

    log_start_us: int | None = None
    first_seen: dict[str, int] = field(default_factory=dict)

    def observe(self, model: str | None, ts_us: int) -> int | None:
        """Record ``model`` at ``ts_us``; return its release time if it appeared well after the log began."""
        if self.log_start_us is None:
            self.log_start_us = ts_us
        if model is None:
            return None
        first = self.first_seen.get(model)
        if first is None:
            if len(self.first_seen) < CLOCK_MODEL_CAP:
                self.first_seen[model] = ts_us
            first = ts_us
        return first if first - self.log_start_us >= NEW_MODEL_AFTER_US else None


@dataclass(slots=True)
class AccountState:
    """Running aggregates of one account's traffic."""

    created_us: int | None = None
    verified: bool = False
    events: int = 0
    tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_us: int = 0
    last_us: int = 0
    gap_n: int = 0
    gap_mean: float = 0.0
    gap_m2: float = 0.0
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    active_hours: set[int] = field(default_factory=set)
    minute: int = -1
    minute_count: int = 0
    busy_minutes: int = 0
    minutes: int = 0
    templates: Counter[str] = field(default_factory=Counter)
    contents: set[int] = field(default_factory=set)
    repeats: int = 0
    domains: Counter[str] = field(default_factory=Counter)
    languages: set[str] = field(default_factory=set)
    system_prompts: set[str] = field(default_factory=set)
    with_system: int = 0
    single_turn: int = 0
    cot: int = 0
    training_data: int = 0
    rubric: int = 0
    logprob_harvest: int = 0
    benchmark: int = 0
    tools: int = 0
    long_max_tokens: int = 0
    temperature_zero: int = 0
    rate_limited: int = 0
    model_events: Counter[str] = field(default_factory=Counter)
    pivot_model: str | None = None
    pivot_at_events: int = 0

    def update(
        self,
        ts_us: int,
        sig: RequestSignals,
        status: int,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        model: str | None,
        released_us: int | None,
    ) -> None:
        """Fold one event in. ``released_us``: the release time of ``model`` if it is newly released."""
        if self.events == 0:
            self.first_us = ts_us
        elif ts_us >= self.last_us:
            gap = (ts_us - self.last_us) / 1e6
            self.gap_n += 1
            delta = gap - self.gap_mean
            self.gap_mean += delta / self.gap_n
            self.gap_m2 += delta * (gap - self.gap_mean)
        self.last_us = max(self.last_us, ts_us)
        self.events += 1
        hour_index = ts_us // HOUR_US
        self.hours[hour_index % 24] += 1
        if len(self.active_hours) < ACTIVE_HOURS_CAP:
            self.active_hours.add(hour_index)
        minute = ts_us // 60_000_000
        if minute != self.minute:
            self._close_minute()
            self.minute, self.minute_count = minute, 0
        self.minute_count += 1

        if status == 429:
            self.rate_limited += 1
            return  # refused calls show pacing, not content: the content was never served
        p, c = prompt_tokens or 0, completion_tokens or 0
        self.prompt_tokens += p
        self.completion_tokens += c
        self.tokens += p + c

        if sig.template_id in self.templates or len(self.templates) < TEMPLATE_CAP:
            self.templates[sig.template_id] += 1
        if sig.content_sig in self.contents:
            self.repeats += 1
        elif len(self.contents) < CONTENT_CAP:
            self.contents.add(sig.content_sig)
        self.domains[sig.domain] += 1
        if len(self.languages) < LANGUAGE_CAP:
            self.languages.add(sig.language)
        if sig.system_prompt_hash is not None:
            self.with_system += 1
            if len(self.system_prompts) < SYSTEM_PROMPT_CAP:
                self.system_prompts.add(sig.system_prompt_hash)
        self.single_turn += sig.user_turns <= 1
        self.cot += sig.cot is not None
        self.training_data += sig.training_data is not None
        self.rubric += sig.rubric is not None
        self.logprob_harvest += sig.logprob_harvest
        self.benchmark += sig.benchmark is not None
        self.tools += sig.tools
        self.long_max_tokens += (sig.max_tokens or 0) >= LONG_MAX_TOKENS
        self.temperature_zero += sig.temperature == 0
        if model is not None and (model in self.model_events or len(self.model_events) < MODEL_CAP):
            self.model_events[model] += 1
            if (
                released_us is not None
                and self.pivot_model is None
                and self.model_events[model] == 1
                and ts_us - released_us <= PIVOT_WINDOW_US
            ):
                self.pivot_model, self.pivot_at_events = model, self.events

    def _close_minute(self) -> None:
        if self.minute_count:
            self.minutes += 1
            self.busy_minutes += self.minute_count >= BUSY_MINUTE_CALLS

    @property
    def served(self) -> int:
        return self.events - self.rate_limited

    def totals(self) -> FeatureTotals:
        """What the features are computed from, as of the last event."""
        return FeatureTotals(
            events=self.events,
            rate_limited=self.rate_limited,
            tokens=self.tokens,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            last_us=self.last_us,
            created_us=self.created_us,
            verified=self.verified,
            gap_n=self.gap_n,
            gap_mean=self.gap_mean,
            gap_m2=self.gap_m2,
            hours=list(self.hours),
            active_hours=len(self.active_hours),
            active_hours_of_day=len({h % 24 for h in self.active_hours}),
            top_template=self.templates.most_common(1)[0][1] if self.templates else 0,
            templates=len(self.templates),
            contents=len(self.contents),
            repeats=self.repeats,
            domains=list(self.domains.values()),
            languages=len(self.languages),
            system_prompts=len(self.system_prompts),
            with_system=self.with_system,
            single_turn=self.single_turn,
            cot=self.cot,
            training_data=self.training_data,
            rubric=self.rubric,
            logprob_harvest=self.logprob_harvest,
            benchmark=self.benchmark,
            tools=self.tools,
            long_max_tokens=self.long_max_tokens,
            temperature_zero=self.temperature_zero,
            minutes=self.minutes + (self.minute_count > 0),
            busy_minutes=self.busy_minutes + (self.minute_count >= BUSY_MINUTE_CALLS),
            pivot_at_events=self.pivot_at_events if self.pivot_model is not None else None,
            pivot_events=self.model_events[self.pivot_model] if self.pivot_model is not None else 0,
        )

    def vector(self, now_us: int | None = None) -> list[float]:
        """The features, in :data:`FEATURES` order."""
        return self.totals().vector(now_us)

    def features(self, now_us: int | None = None) -> dict[str, float]:
        return dict(zip(FEATURES, self.vector(now_us), strict=True))


@dataclass(slots=True)
class FeatureTotals:
    """Everything the features are computed from: an account's totals, however they were aggregated (the streaming
    :class:`AccountState` above, or a DataFrame job over the event archive in :mod:`distillguard.batch`).

    Counts of distinct items are those the bounded state keeps (the first N distinct ones); ``domains`` are the
    events per capability domain in order of first use (the order the entropy is summed in).
    """

    events: int
    rate_limited: int
    tokens: int
    prompt_tokens: int
    completion_tokens: int
    last_us: int
    created_us: int | None
    verified: bool
    gap_n: int
    gap_mean: float
    gap_m2: float
    hours: list[int]  # events per hour of the day (UTC)
    active_hours: int  # distinct clock hours with events
    active_hours_of_day: int  # distinct hours of the day among them
    top_template: int  # events of the most used template
    templates: int
    contents: int
    repeats: int
    domains: list[int]
    languages: int
    system_prompts: int
    with_system: int
    single_turn: int
    cot: int
    training_data: int
    rubric: int
    logprob_harvest: int
    benchmark: int
    tools: int
    long_max_tokens: int
    temperature_zero: int
    minutes: int  # distinct minutes with events
    busy_minutes: int  # of them, those with ten or more
    pivot_at_events: int | None  # the event (1-based) that moved to a newly released model, if one did
    pivot_events: int  # events on that model

    def vector(self, now_us: int | None = None) -> list[float]:
        """The features, in :data:`FEATURES` order."""
        now_us = self.last_us if now_us is None else now_us
        n = max(self.events, 1)
        served = max(self.events - self.rate_limited, 1)
        span_hours = max(self.active_hours, 1)
        age_days = (now_us - self.created_us) / DAY_US if self.created_us is not None else -1.0
        gap_std = math.sqrt(self.gap_m2 / self.gap_n) if self.gap_n > 1 else 0.0
        gap_cv = gap_std / self.gap_mean if self.gap_mean > 0 else 0.0
        total_hours = sum(self.hours) or 1
        hour_entropy = -sum(h / total_hours * math.log(h / total_hours) for h in self.hours if h) / math.log(24)
        top_template = self.top_template / served if self.templates else 0.0
        domain_total = sum(self.domains) or 1
        domain_entropy = -sum(v / domain_total * math.log(v / domain_total) for v in self.domains)
        pivot = 0.0
        if self.pivot_at_events is not None:
            after = self.events - self.pivot_at_events + 1
            pivot = self.pivot_events / after if after >= 5 else 0.0
        return [
            math.log1p(self.events),
            math.log1p(self.tokens),
            self.events / span_hours,
            age_days,
            self.events / max(age_days, 1.0) if age_days >= 0 else -1.0,
            float(self.verified),
            gap_cv,
            hour_entropy,
            self.active_hours_of_day / 24,
            top_template,
            self.templates / served,
            self.contents / served,
            self.repeats / served,
            float(len(self.domains)),
            domain_entropy / math.log(len(DOMAINS)),
            self.single_turn / served,
            self.cot / served,
            self.training_data / served,
            self.rubric / served,
            self.logprob_harvest / served,
            self.benchmark / served,
            self.tools / served,
            self.with_system / served,
            float(self.system_prompts),
            self.long_max_tokens / served,
            self.temperature_zero / served,
            self.completion_tokens / max(self.prompt_tokens, 1),
            float(self.languages),
            self.rate_limited / n,
            self.busy_minutes / max(self.minutes, 1),
            pivot,
        ]
