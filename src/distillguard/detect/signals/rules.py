"""Phrase rules as data: the TOML rule files under ``rules/``, compiled once into gated, anchored regexes.

A rule file holds one family (``cot``, ``training_data``, ``rubric``)::

    family = "cot"
    description = "what the family catches"

    [[rule]]
    id = "cot.step_by_step"              # "<family>.<name>", reported as the signal value
    description = "what this rule catches and why it matters"
    keywords = ["step"]                  # whole lower-case tokens (see "gates" below)
    substrings = ["一步"]                 # the same for scripts without spaces (Chinese, Japanese, Korean...)
    patterns = ['think\\w* step[- ]by[- ]step']   # Python regexes, matched against the normalised text

Patterns see the text lower-cased with every run of whitespace collapsed to one space (and typographic
apostrophes made "'"), so they are written in lower case with plain spaces. Rules are tried in file order and the
first that matches names the signal.

Gates: what keeps this cheap on the request path. A regex with a leading alternation costs ~20 ns per character
in CPython's engine, far too much to run a hundred of them over every prompt, so a pattern runs only when it can
match:

1. token groups: from each parsed pattern, the words that every match contains as whole tokens (a literal word
   between word edges, or one word per alternative of a mandatory group: ``(?:rationale|reasoning)``) are derived
   at load time, conservatively. A pattern with groups is tried only if each group has a word among the prompt's
   tokens: "show", "your" and "reasoning" are each frequent, all three in one prompt much less so. Words are
   looked up in one index shared by all rules, so a prompt's tokens are visited once;
2. keywords and substrings: for a pattern whose words cannot be derived (a top-level alternation, ``\\w*``
   inflections, Chinese or Japanese), the rule's ``keywords`` (or ``substrings``) are the gate instead;
3. anchors: each pattern's longest required literal (for a top-level alternation, one per branch) is computed
   from the parsed regex. ``str.find`` looks for it (a fast C scan; anchors without spaces are even checked before
   the text is normalised), and the regex only runs in windows around its occurrences.

None of this changes a result (a test checks the optimised path against plain regexes on every fixture and on
random phrases): matches are assumed to span at most ``MAX_REACH`` characters around their anchor, and anything
the derivation cannot read simply runs unoptimised.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from distillguard.detect.signals.text import ASCII_TOKEN_RE, TOKEN_RE

# The regex parser of the re package (private, untyped): used at load time only, to read patterns' structure.
_sre: Any = importlib.import_module("re._constants")
_sre_parser: Any = importlib.import_module("re._parser")

RULE_FAMILIES = ("cot", "training_data", "rubric")
# Shortest literal worth searching for, in UTF-8 bytes (two Chinese characters are as selective as four Latin
# letters); shorter ones ("by", "a ") occur everywhere. Punctuation-only anchors ("[[") are rare enough at 2.
MIN_ANCHOR_BYTES = 4
MIN_PUNCTUATION_ANCHOR_BYTES = 2
MAX_REACH = 200
# Occurrences of one anchor examined per text: enough for any real prompt, bounded for adversarial ones.
MAX_ANCHOR_HITS = 8


class RuleError(ValueError):
    """A rule file that does not follow the format above."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """One compiled pattern with what locates its matches cheaply (see the module docstring)."""

    regex: re.Pattern[str]
    # Word groups derived from the regex: every match contains one word of each group as a whole token.
    token_groups: tuple[frozenset[str], ...]
    anchors: tuple[str, ...]  # at least one occurs in every match; empty: no usable anchor
    reach: int  # the longest possible match, capped at MAX_REACH

    def absent_from(self, lower: str) -> bool:
        """True when no anchor is in the merely lower-cased text, so the pattern cannot match its normalised form.

        Normalisation only squeezes whitespace and turns typographic apostrophes into "'", so an anchor without
        spaces or apostrophes can be looked for before paying for it. Unsure cases answer False.
        """
        if not self.anchors:
            return False
        for anchor in self.anchors:  # noqa: SIM110 (a plain loop: no generator on the request path)
            if " " in anchor or "'" in anchor or anchor in lower:
                return False
        return True

    def may_match(self, token_set: Set[str]) -> bool:
        """False when a required word is missing from the tokens: the pattern cannot match, no need to search."""
        for group in self.token_groups:  # noqa: SIM110 (a plain loop: no generator on the request path)
            if group.isdisjoint(token_set):
                return False
        return True

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text`` (normalised as in ``normalise_for_rules``)."""
        if not self.anchors:
            return self.regex.search(text) is not None
        # Windows around the anchor occurrences, merged where they overlap, so no character is scanned twice.
        windows: list[tuple[int, int]] = []
        for anchor in self.anchors:
            start = text.find(anchor)
            hits = 0
            while start >= 0 and hits < MAX_ANCHOR_HITS:
                end = start + len(anchor)
                windows.append((max(0, end - self.reach), start + self.reach))
                start = text.find(anchor, end)
                hits += 1
        if not windows:
            return False
        windows.sort()
        lo, hi = windows[0]
        for next_lo, next_hi in windows[1:]:
            if next_lo <= hi:
                hi = max(hi, next_hi)
                continue
            # pos/endpos keep the real string around the window: \b and ^ see the true neighbours.
            if self.regex.search(text, lo, hi) is not None:
                return True
            lo, hi = next_lo, next_hi
        return self.regex.search(text, lo, hi) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    description: str
    keywords: frozenset[str]
    substrings: tuple[str, ...]
    patterns: tuple[Pattern, ...]


def _literal_runs(items: Any) -> tuple[list[str], list[tuple[str, ...]]]:
    """Literal strings every match of a parsed sequence contains, and alternatives sets from mandatory branches."""
    runs: list[str] = []
    alternatives: list[tuple[str, ...]] = []
    run: list[str] = []
    for op, av in items:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if op is _sre.AT:  # zero-width (\b, ^): the literal on either side stays contiguous
            continue
        if run:
            runs.append("".join(run))
            run = []
        if op is _sre.SUBPATTERN:
            inner_runs, inner_alts = _literal_runs(av[-1])
            runs += inner_runs
            alternatives += inner_alts
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and av[0] >= 1:
            inner_runs, inner_alts = _literal_runs(av[2])
            runs += inner_runs
            alternatives += inner_alts
        elif op is _sre.BRANCH:
            best = [_best_anchor(branch) for branch in av[1]]
            if all(len(b) == 1 for b in best):
                alternatives.append(tuple(b[0] for b in best))
    if run:
        runs.append("".join(run))
    return runs, alternatives


def _selectivity(anchor: str) -> int:
    """Bytes of an anchor, counted as 0 when it is too common a literal to be worth a search."""
    size = len(anchor.encode("utf-8"))
    punctuation = not any(c.isalnum() or c.isspace() for c in anchor)
    return size if size >= (MIN_PUNCTUATION_ANCHOR_BYTES if punctuation else MIN_ANCHOR_BYTES) else 0


def _best_anchor(items: Any) -> tuple[str, ...]:
    """The most selective anchor set of a sequence: its longest required literal, else a branch's alternatives."""
    runs, alternatives = _literal_runs(items)
    longest = max(runs, key=_selectivity, default="")
    if _selectivity(longest):
        return (longest,)
    usable = [alts for alts in alternatives if min(map(_selectivity, alts))]
    if usable:
        return max(usable, key=lambda alts: min(map(_selectivity, alts)))
    return ()


_WORD = re.compile(r"[^\W_]+")
# Words too frequent to be a useful first check (the order of checks only affects speed, never results).
_COMMON_TEXT = (
    "a an the and or of to in on for with by from as at is are be you your i me my we it this that these those "
    "which what how all each every any some more most other than then so if not no do does can will would should "
    "give make write show use explain answer question"
)
_COMMON_WORDS = frozenset(_COMMON_TEXT.split())
_NONWORD_CHAR = re.compile(r"[\W_]")


def _is_separator(item: Any) -> bool:
    """Whether a parsed item can only match at a word edge: \\b, ^, $ or a non-word character (class)."""
    if item is None:
        return False
    op, av = item
    if op is _sre.AT:
        return av in (_sre.AT_BOUNDARY, _sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING, _sre.AT_END, _sre.AT_END_STRING)
    if op is _sre.LITERAL:
        return _NONWORD_CHAR.fullmatch(chr(av)) is not None
    if op is _sre.IN:
        return all(o is _sre.LITERAL and _NONWORD_CHAR.fullmatch(chr(a)) is not None for o, a in av)
    return False


_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)


def _edge_is_separator(items: Any, last: bool) -> bool:
    """Whether every match of a parsed sequence starts (``last`` False) or ends with a non-word character.

    Optional items at that edge are looked through when they themselves start/end with a non-word character.
    """
    seq = list(items)
    ordered = reversed(seq) if last else iter(seq)
    for op, av in ordered:
        if op is _sre.SUBPATTERN:
            return _edge_is_separator(av[-1], last)
        if op is _sre.BRANCH:
            return all(_edge_is_separator(alt, last) for alt in av[1])
        if op in _REPEATS:
            if not _edge_is_separator(av[2], last):
                return False
            if av[0] >= 1:
                return True
            continue  # optional, and separated if present: the verdict is the next item's
        return _is_separator((op, av)) and op is not _sre.AT
    return False


def _separated(seq: list[Any], index: int, step: int) -> bool:
    """Whether the text next to ``seq[index]`` (before it if step is -1, after if +1) is a word edge.

    Optional items that begin/end with a non-word character are looked through: "show (?:me )?your" still has a
    space before "your" whether or not "me " is there.
    """
    j = index + step
    while 0 <= j < len(seq):
        op, av = seq[j]
        if _is_separator((op, av)):
            return True
        if op in _REPEATS and av[0] == 0:
            if _edge_is_separator(av[2], last=step < 0):
                j += step
                continue
            return False
        return _edge_is_separator([(op, av)], last=step < 0)
    return False


def _optional_suffix(seq: list[Any], index: int) -> tuple[str, int] | None:
    """("s", next index) when ``seq[index]`` is an optional literal suffix such as the ``s?`` of ``answers?``."""
    if index >= len(seq):
        return None
    op, av = seq[index]
    if op in _REPEATS and av[0] == 0 and av[1] == 1 and all(o is _sre.LITERAL for o, _ in av[2]):
        suffix = "".join(chr(a) for _, a in av[2])
        if _WORD.fullmatch(suffix):
            return suffix, index + 1
    return None


def _alternative_word(items: list[Any], left_ok: bool, right_ok: bool) -> str | None:
    """A whole word that every match of a branch alternative contains (its leading literal word), if any."""
    literal = []
    for op, av in items:
        if op is not _sre.LITERAL:
            break
        literal.append(chr(av))
    text = "".join(literal)
    word = _WORD.match(text)
    if word is None or word.start() != 0 or not left_ok:
        return None
    if word.end() < len(text):  # followed by a literal character of the alternative
        return word.group() if _NONWORD_CHAR.fullmatch(text[word.end()]) else None
    return word.group() if len(literal) == len(items) and right_ok else None


def _unfactor(items: Any) -> list[Any]:
    """Undo the parser's prefix factoring: ``(?:rationale|reasoning)`` parses as ``r(?:ationale|easoning)``.

    Word characters right before a branch are moved back into each alternative, so whole words can be read off.
    """
    seq = list(items)
    out: list[Any] = []
    for op, av in seq:
        if op is _sre.SUBPATTERN and len(av[-1]) == 1 and av[-1][0][0] is _sre.BRANCH:
            op, av = av[-1][0]
        if op is _sre.BRANCH:
            prefix: list[Any] = []
            while out and out[-1][0] is _sre.LITERAL and _NONWORD_CHAR.fullmatch(chr(out[-1][1])) is None:
                prefix.insert(0, out.pop())
            if prefix:
                av = (av[0], [prefix + list(alt) for alt in av[1]])
        out.append((op, av))
    return out


def _token_groups(items: Any) -> list[frozenset[str]]:
    """Word groups required by a parsed sequence (conservative: a word is used only where it is a whole token)."""
    seq = _unfactor(items)
    groups: list[frozenset[str]] = []
    i = 0
    while i < len(seq):
        op, av = seq[i]
        if op is _sre.LITERAL:
            j = i
            while j < len(seq) and seq[j][0] is _sre.LITERAL:
                j += 1
            run = "".join(chr(a) for _, a in seq[i:j])
            suffix = _optional_suffix(seq, j)
            for word in _WORD.finditer(run):
                left = run[word.start() - 1] if word.start() > 0 else None
                right = run[word.end()] if word.end() < len(run) else None
                left_ok = _separated(seq, i, -1) if left is None else _NONWORD_CHAR.fullmatch(left) is not None
                if right is not None:
                    if left_ok and _NONWORD_CHAR.fullmatch(right) is not None:
                        groups.append(frozenset((word.group(),)))
                elif left_ok and _separated(seq, j - 1, 1):
                    groups.append(frozenset((word.group(),)))
                elif left_ok and suffix is not None and _separated(seq, suffix[1] - 1, 1):
                    groups.append(frozenset((word.group(), word.group() + suffix[0])))
            i = j
            continue
        if op is _sre.SUBPATTERN:
            inner = list(av[-1])
            if len(inner) == 1 and inner[0][0] is _sre.BRANCH:
                op, av = inner[0]
            else:
                groups += _token_groups(inner)
        if op is _sre.BRANCH:
            left_ok, right_ok = _separated(seq, i, -1), _separated(seq, i, 1)
            suffix = None if right_ok else _optional_suffix(seq, i + 1)
            if suffix is not None:
                right_ok = _separated(seq, suffix[1] - 1, 1)
            words = [_alternative_word(list(alt), left_ok, right_ok) for alt in av[1]]
            if all(words):
                found = {w for w in words if w}
                if suffix is not None:
                    found |= {w + suffix[0] for w in found}
                groups.append(frozenset(found))
        i += 1
    return groups


def compile_pattern(pattern: str) -> Pattern:
    """Compile a rule pattern and derive its token groups and anchors (none if the parser cannot be read)."""
    regex = re.compile(pattern)
    try:
        parsed = _sre_parser.parse(pattern)
        items = list(parsed)
        anchors = _best_anchor(items)
        groups = _token_groups(items)
        reach = min(parsed.getwidth()[1], MAX_REACH)
    except Exception:  # a private module of the re package: if its shape changes, run without these aids
        return Pattern(regex, (), (), MAX_REACH)
    # Groups without common words first: may_match stops at the first group that is absent.
    ordered = sorted(dict.fromkeys(groups), key=lambda g: (len(g & _COMMON_WORDS), len(g)))
    return Pattern(regex, tuple(ordered), tuple(dict.fromkeys(anchors)), reach)


@dataclass(frozen=True, slots=True)
class RuleFamily:
    """The compiled rules of one family and the keyword index that gates them."""

    name: str
    description: str
    rules: tuple[Rule, ...]
    keywords: frozenset[str]
    by_keyword: dict[str, tuple[int, ...]]
    # (substring, rule index), split by whether the substring is ASCII (those are always looked for).
    ascii_substrings: tuple[tuple[str, int], ...]
    other_substrings: tuple[tuple[str, int], ...]

    def candidates(self, text: str, token_set: Set[str], substrings: bool) -> list[tuple[int, list[Pattern]]]:
        """The rules (index, patterns worth running) whose gates are open for this text, in file order.

        A rule's keyword or substring gate must be open, and then a pattern is kept only if every one of its
        token groups has a word among the tokens. ``substrings``: whether the text has CJK/Thai/Korean characters
        (``text.needs_substrings``); the substrings of those scripts are not even looked for otherwise.
        """
        found: set[int] = set()
        for keyword in self.keywords.intersection(token_set):
            found.update(self.by_keyword[keyword])
        for sub, index in self.ascii_substrings:
            if index not in found and sub in text:
                found.add(index)
        if substrings:
            for sub, index in self.other_substrings:
                if index not in found and sub in text:
                    found.add(index)
        out = []
        for index in sorted(found):
            patterns = [p for p in self.rules[index].patterns if p.may_match(token_set)]
            if patterns:
                out.append((index, patterns))
        return out

    def first_match(self, normalised: str, candidates: list[tuple[int, list[Pattern]]]) -> str | None:
        """The id of the first candidate rule with a pattern that matches the normalised text."""
        for index, patterns in candidates:
            if any(pattern.search(normalised) for pattern in patterns):
                return self.rules[index].id
        return None

    def match(self, text: str, token_set: Set[str], substrings: bool) -> str | None:
        """The id of the first rule (in file order) whose gates open and whose pattern matches ``text``.

        ``text`` must already be in the form of ``normalise_for_rules``.
        """
        candidates = self.candidates(text, token_set, substrings)
        return self.first_match(text, candidates) if candidates else None


@dataclass(frozen=True, slots=True)
class PhraseRules:
    """Several rule families behind one word index, so that one pass over the tokens gates all of them.

    A pattern with derived token groups is looked up by the words of its first group (the least common one) and
    then tried only if all its groups are present. A pattern without groups (its required words could not be
    derived, or it is in a script without spaces) is tried when its rule's keyword or substring gate opens.
    """

    families: tuple[RuleFamily, ...]
    # word -> ((family, rule, pattern), ...) for patterns with token groups
    by_word: dict[str, tuple[tuple[int, int, int], ...]] = field(init=False, repr=False)
    # keyword -> ((family, rule, pattern), ...) for the patterns without token groups
    by_keyword: dict[str, tuple[tuple[int, int, int], ...]] = field(init=False, repr=False)
    # (substring, ((family, rule, pattern), ...)), split by whether the substring is ASCII (always looked for)
    ascii_substrings: tuple[tuple[str, tuple[tuple[int, int, int], ...]], ...] = field(init=False, repr=False)
    other_substrings: tuple[tuple[str, tuple[tuple[int, int, int], ...]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_word: dict[str, list[tuple[int, int, int]]] = {}
        by_keyword: dict[str, list[tuple[int, int, int]]] = {}
        subs: dict[str, list[tuple[int, int, int]]] = {}
        for f, family in enumerate(self.families):
            for r, rule in enumerate(family.rules):
                for p, pattern in enumerate(rule.patterns):
                    ref = (f, r, p)
                    if pattern.token_groups:
                        for word in pattern.token_groups[0]:
                            by_word.setdefault(word, []).append(ref)
                        continue
                    for keyword in rule.keywords:
                        by_keyword.setdefault(keyword, []).append(ref)
                    for sub in rule.substrings:
                        subs.setdefault(sub, []).append(ref)
        object.__setattr__(self, "by_word", {k: tuple(v) for k, v in by_word.items()})
        object.__setattr__(self, "by_keyword", {k: tuple(v) for k, v in by_keyword.items()})
        object.__setattr__(self, "ascii_substrings", tuple((k, tuple(v)) for k, v in subs.items() if k.isascii()))
        object.__setattr__(self, "other_substrings", tuple((k, tuple(v)) for k, v in subs.items() if not k.isascii()))

    def vocabulary(self) -> frozenset[str]:
        """Every word the gates look up: ``match`` may be given just the tokens that are in this set."""
        words = set(self.by_word) | set(self.by_keyword)
        for family in self.families:
            for rule in family.rules:
                for pattern in rule.patterns:
                    for group in pattern.token_groups:
                        words |= group
        return frozenset(words)

    def match(self, text: str, lower: str, token_set: Set[str], substrings: bool) -> tuple[str | None, ...]:
        """For each family, the id of its first rule that matches ``text`` (None where none does).

        ``lower`` is ``text`` lower-cased and ``token_set`` its tokens (or only those in ``vocabulary()``);
        ``substrings``: whether the text has CJK/Thai/Korean characters (``text.needs_substrings``).
        """
        refs: set[tuple[int, int, int]] = set()
        for word in token_set:
            refs.update(self.by_word.get(word, ()))
            refs.update(self.by_keyword.get(word, ()))
        return self.match_refs(text, lower, refs, token_set, substrings)

    def word_refs(self) -> dict[str, tuple[tuple[int, int, int], ...]]:
        """word -> the patterns it opens (``by_word`` and ``by_keyword`` merged), for a caller's own index."""
        out = {k: list(v) for k, v in self.by_word.items()}
        for k, v in self.by_keyword.items():
            out.setdefault(k, []).extend(v)
        return {k: tuple(v) for k, v in out.items()}

    def match_refs(
        self, text: str, lower: str, refs: set[tuple[int, int, int]], token_set: Set[str], substrings: bool
    ) -> tuple[str | None, ...]:
        """``match`` with the word-opened patterns already collected (``refs`` is extended in place)."""
        for sub, found in self.ascii_substrings:
            if sub in lower:
                refs.update(found)
        if substrings:
            for sub, found in self.other_substrings:
                if sub in lower:
                    refs.update(found)
        result: list[str | None] = [None] * len(self.families)
        if not refs:
            return tuple(result)  # the usual case: no gate open, no regex run, no normalisation
        normalised: str | None = None
        for f, r, p in sorted(refs):  # file order: the first rule of a family that matches names the signal
            if result[f] is not None:
                continue
            pattern = self.families[f].rules[r].patterns[p]
            if not pattern.may_match(token_set) or pattern.absent_from(lower):
                continue
            if normalised is None:
                normalised = normalise_for_rules(text)
            if pattern.search(normalised):
                result[f] = self.families[f].rules[r].id
        return tuple(result)


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}: expected a list of non-empty strings")
    return value


def compile_family(data: dict[str, Any], source: str = "<rules>") -> RuleFamily:
    """Validate and compile one parsed rule file."""
    family = data.get("family")
    if not isinstance(family, str) or not family:
        raise RuleError(f"{source}: missing 'family'")
    raw_rules = data.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleError(f"{source}: no [[rule]] entries")
    rules: list[Rule] = []
    by_keyword: dict[str, list[int]] = {}
    substrings: list[tuple[str, int]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            raise RuleError(f"{source}: rule #{index} is not a table")
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not rule_id.startswith(family + "."):
            raise RuleError(f"{source}: rule #{index}: id must start with '{family}.'")
        if rule_id in seen:
            raise RuleError(f"{source}: duplicate rule id {rule_id}")
        seen.add(rule_id)
        where = f"{source}: {rule_id}"
        description = raw.get("description")
        if not isinstance(description, str) or not description.strip():
            raise RuleError(f"{where}: missing description")
        keywords = _strings(raw.get("keywords"), f"{where}.keywords")
        subs = _strings(raw.get("substrings"), f"{where}.substrings")
        patterns = _strings(raw.get("patterns"), f"{where}.patterns")
        if not patterns:
            raise RuleError(f"{where}: no patterns")
        if not keywords and not subs:
            raise RuleError(f"{where}: needs keywords or substrings (the gate that keeps matching cheap)")
        for keyword in keywords:
            # A keyword must be exactly one token as the tokenizer cuts it, else it could never be in the set.
            pattern = ASCII_TOKEN_RE if keyword.isascii() else TOKEN_RE
            if keyword != keyword.lower() or pattern.fullmatch(keyword) is None:
                raise RuleError(f"{where}: keyword {keyword!r} is not a single lower-case token; use substrings")
            by_keyword.setdefault(keyword, []).append(index)
        for sub in subs:
            if sub != sub.lower():
                raise RuleError(f"{where}: substring {sub!r} must be lower case")
            substrings.append((sub, index))
        try:
            compiled = tuple(compile_pattern(p) for p in patterns)
        except re.error as e:
            raise RuleError(f"{where}: bad pattern: {e}") from e
        rules.append(Rule(rule_id, description.strip(), frozenset(keywords), tuple(subs), compiled))
    return RuleFamily(
        name=family,
        description=str(data.get("description", "")).strip(),
        rules=tuple(rules),
        keywords=frozenset(by_keyword),
        by_keyword={k: tuple(v) for k, v in by_keyword.items()},
        ascii_substrings=tuple(x for x in substrings if x[0].isascii()),
        other_substrings=tuple(x for x in substrings if not x[0].isascii()),
    )


def read_rule_file(name: str) -> dict[str, Any]:
    """The parsed TOML of ``rules/<name>.toml`` shipped in the package."""
    path = resources.files("distillguard.detect.signals").joinpath("rules", f"{name}.toml")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def load_family(name: str) -> RuleFamily:
    """Load and compile the shipped rule family ``name``."""
    return compile_family(read_rule_file(name), f"rules/{name}.toml")


def load_families(names: Iterable[str] = RULE_FAMILIES) -> dict[str, RuleFamily]:
    """All shipped phrase-rule families, by name."""
    return {name: load_family(name) for name in names}


def load_phrase_rules(names: Iterable[str] = RULE_FAMILIES) -> PhraseRules:
    """The shipped families (in ``names`` order) behind one keyword index."""
    return PhraseRules(tuple(load_family(name) for name in names))


def normalise_for_rules(text: str) -> str:
    """Lower case, typographic apostrophes made plain, whitespace runs collapsed to one space.

    This is the form rule patterns are written against.
    """
    return " ".join(text.lower().replace("\u2019", "'").split())
