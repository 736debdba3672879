"""Capability domain of a prompt, scored from the keyword rules in ``rules/domains.toml``."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Set
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from distillguard.detect.signals.rules import RuleError
from distillguard.events.signals import DOMAINS

_TOKEN = re.compile(r"[^\W_]+")

# Domain regexes look at the start of the prompt only: enough to see code, formulas or a tool protocol, and it
# bounds their cost on long prompts (the keyword points still come from all of the analysed text).
PATTERN_SCAN_CHARS = 1024

WORD_POINTS = 1
STRONG_POINTS = 2
SUBSTRING_POINTS = 2
PATTERN_POINTS = 3


@dataclass(frozen=True, slots=True)
class DomainPattern:
    token_triggers: frozenset[str]  # one-word triggers, looked up among the tokens
    substring_triggers: tuple[str, ...]  # the others (symbols, multi-word), looked up in the text
    regex: re.Pattern[str]

    def search(self, lower: str, token_set: Set[str]) -> bool:
        """Whether a trigger is present and the regex matches."""
        if self.token_triggers.isdisjoint(token_set) and not any(t in lower for t in self.substring_triggers):
            return False
        return self.regex.search(lower) is not None


@dataclass(frozen=True, slots=True)
class DomainRule:
    name: str
    description: str
    words: frozenset[str]
    strong: frozenset[str]
    substrings: tuple[str, ...]
    patterns: tuple[DomainPattern, ...]


@dataclass(frozen=True, slots=True)
class DomainClassifier:
    """Scores every domain and keeps the best one (``general`` below ``min_score``)."""

    rules: tuple[DomainRule, ...]
    min_score: int
    # token -> ((rule index, points), ...): one set intersection finds every keyword hit of every domain.
    points: dict[str, tuple[tuple[int, int], ...]] = field(init=False, repr=False)
    # Pattern triggers, indexed the same way: token -> patterns, and (substring, patterns) pairs.
    token_triggers: dict[str, tuple[tuple[int, DomainPattern], ...]] = field(init=False, repr=False)
    substring_triggers: tuple[tuple[str, tuple[tuple[int, DomainPattern], ...]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        points: dict[str, list[tuple[int, int]]] = {}
        tokens: dict[str, list[tuple[int, DomainPattern]]] = {}
        subs: dict[str, list[tuple[int, DomainPattern]]] = {}
        for index, rule in enumerate(self.rules):
            for word in rule.words - rule.strong:
                points.setdefault(word, []).append((index, WORD_POINTS))
            for word in rule.strong:
                points.setdefault(word, []).append((index, STRONG_POINTS))
            for pattern in rule.patterns:
                for token in pattern.token_triggers:
                    tokens.setdefault(token, []).append((index, pattern))
                for sub in pattern.substring_triggers:
                    subs.setdefault(sub, []).append((index, pattern))
        object.__setattr__(self, "points", {k: tuple(v) for k, v in points.items()})
        object.__setattr__(self, "token_triggers", {k: tuple(v) for k, v in tokens.items()})
        object.__setattr__(self, "substring_triggers", tuple((k, tuple(v)) for k, v in subs.items()))

    def vocabulary(self) -> frozenset[str]:
        """Every word the classifier looks up: ``classify`` may be given just the tokens that are in this set."""
        return frozenset(self.points) | frozenset(self.token_triggers)

    def classify(self, lower: str, token_set: Set[str], substrings: bool, agentic: bool) -> str:
        """The domain of a lower-cased prompt; ``agentic`` (tools offered or used) decides on its own.

        ``token_set``: the prompt's tokens, or only those in ``vocabulary()``.
        """
        if agentic:
            return "agentic"
        points: list[tuple[int, int]] = []
        patterns: list[tuple[int, DomainPattern]] = []
        for token in token_set:
            points += self.points.get(token, ())
            patterns += self.token_triggers.get(token, ())
        return self.decide(lower, points, patterns, substrings)

    def decide(
        self,
        lower: str,
        points: list[tuple[int, int]],
        patterns: list[tuple[int, DomainPattern]],
        substrings: bool,
    ) -> str:
        """``classify`` from the keyword points and token-triggered patterns already looked up for the prompt."""
        scores = [0] * len(self.rules)
        for index, value in points:
            scores[index] += value
        if substrings:
            for index, rule in enumerate(self.rules):
                scores[index] += SUBSTRING_POINTS * sum(1 for s in rule.substrings if s in lower)
        head = lower[:PATTERN_SCAN_CHARS]
        triggered = {id(pattern): (index, pattern) for index, pattern in patterns}  # a pattern counts once
        for sub, entries in self.substring_triggers:
            if sub in head:
                for index, pattern in entries:
                    triggered[id(pattern)] = (index, pattern)
        for index, pattern in triggered.values():
            if pattern.regex.search(head) is not None:
                scores[index] += PATTERN_POINTS
        best = max(range(len(scores)), key=scores.__getitem__, default=-1)  # the first of equal scores
        return self.rules[best].name if best >= 0 and scores[best] >= self.min_score else "general"


def _strings(raw: dict[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}.{key}: expected a list of non-empty strings")
    return value


def _pattern(raw: Any, where: str) -> DomainPattern:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a [[domain.pattern]] must be a table")
    triggers = _strings(raw, "triggers", f"{where}.pattern")
    regex = raw.get("regex")
    if not triggers or not isinstance(regex, str) or not regex:
        raise RuleError(f"{where}: a pattern needs triggers and a regex")
    if any(t != t.lower() for t in triggers):
        raise RuleError(f"{where}: triggers are matched against lower-case text and must be lower case")
    words = frozenset(t for t in triggers if _TOKEN.fullmatch(t))
    try:
        return DomainPattern(words, tuple(t for t in triggers if t not in words), re.compile(regex))
    except re.error as e:
        raise RuleError(f"{where}: bad pattern: {e}") from e


def compile_domains(data: dict[str, Any], source: str = "domains.toml") -> DomainClassifier:
    """Validate and compile the parsed domain rule file; rules are ordered as in ``DOMAINS`` (ties go first)."""
    raw_domains = data.get("domain")
    if not isinstance(raw_domains, list) or not raw_domains:
        raise RuleError(f"{source}: no [[domain]] entries")
    min_score = data.get("min_score", 2)
    if not isinstance(min_score, int) or min_score < 1:
        raise RuleError(f"{source}: min_score must be a positive integer")
    by_name: dict[str, DomainRule] = {}
    for raw in raw_domains:
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or name not in DOMAINS or name == "general":
            raise RuleError(f"{source}: domain name {name!r} is not one of {DOMAINS[:-1]}")
        if name in by_name:
            raise RuleError(f"{source}: duplicate domain {name}")
        where = f"{source}: {name}"
        description = raw.get("description")
        if not isinstance(description, str) or not description.strip():
            raise RuleError(f"{where}: missing description")
        patterns = tuple(_pattern(p, where) for p in raw.get("pattern", []))
        by_name[name] = DomainRule(
            name=name,
            description=description.strip(),
            words=frozenset(_strings(raw, "words", where)),
            strong=frozenset(_strings(raw, "strong", where)),
            substrings=tuple(_strings(raw, "substrings", where)),
            patterns=patterns,
        )
    rules = tuple(by_name[name] for name in DOMAINS if name in by_name)
    return DomainClassifier(rules, min_score)


def load_domains() -> DomainClassifier:
    """The shipped domain rules."""
    path = resources.files("distillguard.detect.signals").joinpath("rules", "domains.toml")
    return compile_domains(tomllib.loads(path.read_text(encoding="utf-8")))
