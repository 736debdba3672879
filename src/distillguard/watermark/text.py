"""The text watermark: keyed, meaning-preserving lexical choices, applied to any upstream's answer after the fact.

One engine reads text token by token, in order, and finds the *sites* where a word class of the lexicon
(watermark/lexicon.py) occurs in a context that allows it. The marker then writes, at each site, the variant a keyed
pseudo-random function picks for (class, previous word); the detector counts the sites where the variant present is
the keyed one. Both see the text the same way (the marker's output is what the detector reads), so a marked text
scores a hit at every site it marked.

Never touched: fenced and inline code, math between ``$``, URLs and e-mail addresses, quoted text, a whole answer
that is JSON, capitalised words inside a sentence (names), and anything after a word that is not plain prose.

Besides the words, whitespace is a site: one or two spaces before the next sentence on the same line, none or one
before the newline that ends a line after a sentence (up to two at the end of a paragraph), and none, one or two on
the blank line between two paragraphs.
Rendered Markdown and HTML collapse them all, so the reader sees nothing; they are the densest sites in prose
(several per 100 words).

Streaming: text is processed as it arrives; what can still change (an unfinished word, the words of a phrase that
may be a site, up to five words and the two tokens after them, or whitespace after a sentence end or with a line
break until the next word shows what follows) is held back, everything else is released at once. Most streamed
pieces (a plain word, a phrase start, a sentence end, punctuation seen before) take a short way that gives the same
releases as the token machine (``Engine._step``, ``Engine._replay``).

Under the null hypothesis (a text written without the key) the keyed choice at a site is independent of the text,
so a site is a hit with probability 1/k for a class of k variants. Each (class, previous word) is scored once, so a
repeated phrase cannot pile up evidence, and a formatting channel is scored only in a text that shows two of its
variants (a rule that reads the text alone, never the key, so it keeps the null distribution: it drops what a
normalisation of quotes or whitespace has flattened instead of counting it as misses). The number of hits then
follows a Poisson-binomial distribution, whose tail is computed exactly (watermark/stats.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

from distillguard.watermark.lexicon import (
    APOSTROPHE,
    APOSTROPHES,
    BLANK_LINE,
    CLASSES,
    CURLY,
    FORMATTING,
    LINE_END,
    PARAGRAPH_END,
    SENTENCE_SPACE,
    WordClass,
    participle,
)
from distillguard.watermark.result import DEFAULT_ALPHA, Detection

SCHEME = "lexical-v1"
Strength = Literal["standard", "strong"]
# The lexicon levels each strength uses.
LEVELS: dict[str, int] = {"standard": 1, "strong": 2}

# Tokens: words (with an inner apostrophe), numbers, whitespace runs, code fences, "$$", and any other single
# character (nothing is ever dropped).
_TOKEN: Final = re.compile(
    r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?|\$?\d+(?:[.,]\d+)*|\s+|`{3,}|\$\$|[^\s]", re.DOTALL
)  # "$5" is an amount (a number), not the start of math
# A whitespace-delimited piece that is an address, a path, a domain or an identifier, not prose: kept whole and
# never marked ("often.perhaps@example.com", "a/b", "do_not", "e.g.", "x.y").
_COMPOUND: Final = re.compile(r"[@_]|://|\w[./\\]\w")
_SENTENCE_END: Final = frozenset(".!?")
# After a word, these end a sentence (or, ":" included, a line that announces what follows) for the spacing sites.
_STOPS: Final = frozenset(".!?:")
# Closing marks between a word and its stop: "(see below).", "**bold**.", "the word “this”." still end a sentence.
_CLOSERS: Final = frozenset(')]*_"”»')
# Words a period follows without ending the sentence: no spacing site after them ("Dr.  Smith" would look odd in raw
# text). Single letters (initials) are excluded too.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "no", "fig", "inc", "ltd", "co", "approx", "cf",
     "al", "ca", "vol", "pp", "ch", "sec", "eq", "ref"}
)  # fmt: skip
_BULLETS: Final = frozenset("-*•#>")
_QUOTES_OPEN: Final = frozenset('"“«')
_JSON_AFTER_BRACKET: Final = frozenset('{["]')
_URL_WORDS: Final = frozenset({"http", "https", "ftp", "www", "mailto"})
_MAX_HELD_TOKENS: Final = 12
# Between two streamed chunks, which short way the next piece may take (Engine._step): none (_SLOW), or the engine is
# in prose (_PROSE) or in a protected span (_PROTECTED) with nothing held, or it holds a word that only starts a
# phrase and its space (_HELD), or whitespace after a sentence end or with a line break (_SPACED).
_SLOW: Final = 0
_PROSE: Final = 1
_PROTECTED: Final = 2
_HELD: Final = 3
_SPACED: Final = 4
# A chunk shorter than this goes through Engine._words even when no short way applies (a streamed delta).
_SHORT: Final = 64
# Keyed choices already computed, by (key, class id, context): a key marks many answers, and the same contexts (the
# previous word of a site: "it", "the", "#") come back in most of them. Cleared when large.
_CHOICES: Final[dict[tuple[bytes, int, str], int]] = {}
_CHOICES_MAX = 50_000


@dataclass(frozen=True, slots=True)
class TextKey:
    """A key of the text watermark. ``key_id`` names it in reports without revealing it."""

    secret: bytes
    scope: str  # "deployment", "account:<id>", "cluster:<id>"

    @property
    def key_id(self) -> str:
        return _key_id(self.secret)


@lru_cache(maxsize=1024)
def _key_id(secret: bytes) -> str:
    return hashlib.sha256(b"key-id:" + secret).hexdigest()[:12]


def derive_key(deployment_secret: bytes, scope: str = "deployment") -> TextKey:
    """The watermark key of a scope, derived from the deployment secret (never stored on its own)."""
    return TextKey(hmac.new(deployment_secret, f"watermark:{SCHEME}:{scope}".encode(), "sha256").digest(), scope)


class _Trie:
    __slots__ = ("children", "terminals")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.terminals: list[tuple[WordClass, int]] = []


def _trie(classes: Iterable[WordClass]) -> _Trie:
    root = _Trie()
    for c in classes:
        for index, words in enumerate(c.variants):
            node = root
            for w in words:
                node = node.children.setdefault(w, _Trie())
            node.terminals.append((c, index))
    # Openers first: where a sentence opens with one and a comma follows, the opener class is the site.
    nodes = [root]
    while nodes:
        node = nodes.pop()
        node.terminals.sort(key=lambda t: not t[0].opener)
        nodes.extend(node.children.values())
    return root


_ROOT: Final = _trie(CLASSES)
# The first words of phrases that may be a site anywhere, and of those that are sites only at a sentence start
# (openers): "of", "as", "to" are held back as a possible phrase only where a sentence starts.
_ROOT_WORDS: Final = frozenset(v[0] for c in CLASSES if not c.opener for v in c.variants)
_OPENER_WORDS: Final = frozenset(v[0] for c in CLASSES if c.opener for v in c.variants) - _ROOT_WORDS

# A piece is a whitespace run, or a non-space run with the single space after it when a word follows (most of prose:
# one loop turn per word instead of two).
_PIECES: Final = re.compile(r"\s+|\S+(?: (?=\S))?")
# A word (or nothing) and the whitespace run after it: a streamed chunk that ends with whitespace, in pairs.
_RUNS: Final = re.compile(r"(\S*)(\s+)")
# Pieces known to be a plain word, then a comma or semicolon, or the single space after it, or both ("word ",
# "word, ", "word,"), mapped to the word lowercased; every other piece seen maps to "". Such a word cannot start a
# site or a URL (or, with the comma, the phrase it starts cannot go on), so with nothing held it is released as it
# is, in prose or in a protected span, and it leaves no word end behind (the comma or the space ends it). A cache
# shared by all engines (the same words come back in every answer; a dictionary lookup is cheaper than the checks),
# cleared when it reaches _PLAIN_MAX entries (a few MB).
_PLAIN: Final[dict[str, str]] = {}
_PLAIN_MAX = 50_000
# The same for a plain word alone (at the end of a line or of a streamed chunk), which leaves a word end behind.
_BARE: Final[dict[str, str]] = {}
# "word. " pieces (".", "!", "?" or ":" after a plain word that is neither an abbreviation nor a single letter, then
# one space before the next word): the word lowercased and the stop. The space is a spacing site unless the stop is
# ":" or a lowercase letter follows.
_STOPPED: Final[dict[str, tuple[str, str]]] = {}
# "word " pieces whose word starts a phrase (and is no site on its own): the word lowercased, the words that
# continue the phrase, the word as it is, and whether it is held anywhere (else only where a sentence starts: an
# opener's first word). The word is plain unless the next piece starts with one of the words that continue it.
_STARTS: Final[dict[str, tuple[str, dict[str, _Trie], str, bool]]] = {}


def _plain_word(piece: str) -> str:
    """What ``_PLAIN`` holds for a piece (and the entries of ``_BARE`` and ``_STARTS`` it has)."""
    if len(_PLAIN) >= _PLAIN_MAX:
        _PLAIN.clear()
        _BARE.clear()
        _STARTS.clear()
        _STOPPED.clear()
        _WITH_SPACE.clear()  # it holds what _PLAIN held: a piece found there would skip _STARTS and _STOPPED
    spaced = piece[-1] == " "
    word = piece[:-1] if spaced else piece
    comma = word[-1:] in (",", ";")
    if comma:
        word = word[:-1]
    low = ""
    if word.isalpha():
        low = word.lower()
        node = _ROOT.children.get(low)
        if low in _URL_WORDS or (node is not None and node.terminals):
            low = ""  # a one-word site, or a URL: the engine decides
        elif node is not None and not comma:
            if spaced:
                _STARTS[piece] = (low, node.children, word, low in _ROOT_WORDS)
            low = ""  # a phrase may start here
        elif not spaced and not comma:
            _BARE[piece] = low
            low = ""
    elif spaced and not comma and word[-1:] in _STOPS and word[:-1].isalpha():
        stopped = word[:-1].lower()
        if (
            stopped not in _ROOT.children
            and stopped not in _URL_WORDS
            and len(stopped) > 1
            and stopped not in _ABBREVIATIONS
        ):
            _STOPPED[piece] = (stopped, word[-1])
    _PLAIN[piece] = low
    return low


# Streamed deltas with whitespace, mapped to what comes up to their last whitespace (None for a single space:
# " word") and the rest (an unfinished word, or ""). And words mapped to the word and a space (the piece
# ``Engine.feed`` reads when a " word" delta comes after a word) and what _PLAIN holds for that piece: no string is
# built for most token-sized deltas. Cleared when large, like _PLAIN (_WITH_SPACE with _PLAIN too).
_CUTS: Final[dict[str, tuple[str | None, str]]] = {}
_WITH_SPACE: Final[dict[str, tuple[str, str]]] = {}


def _cut(delta: str) -> tuple[str | None, str] | None:
    """What ``_CUTS`` holds for a delta (None if it has no whitespace)."""
    rest = "" if delta[-1].isspace() else delta.rsplit(None, 1)[-1]
    if len(rest) == len(delta):
        return None
    head = delta[: len(delta) - len(rest)]
    cut = (None if head == " " else head, rest)
    if len(delta) < _SHORT:  # a streamed delta, not a whole text
        if len(_CUTS) >= _PLAIN_MAX:
            _CUTS.clear()
        _CUTS[delta] = cut
    return cut


def _spaced(word: str) -> tuple[str, str]:
    piece = word + " "
    low = _PLAIN.get(piece)
    known = (piece, _plain_word(piece) if low is None else low)
    if len(_WITH_SPACE) >= _PLAIN_MAX:
        _WITH_SPACE.clear()
    _WITH_SPACE[word] = known
    return known


# The tokens of a non-space run ("" for an opaque one: an address, a path, an identifier), and the first word of a
# piece lowercased ("" if it does not start with a word), cached like _PLAIN.
_SPLIT: Final[dict[str, tuple[str, ...]]] = {}
_LEAD: Final[dict[str, str]] = {}


def _split(word: str) -> tuple[str, ...]:
    if word.isalpha():
        parts: tuple[str, ...] = (word,)
    elif _COMPOUND.search(word):
        parts = ()
    else:
        parts = tuple(_TOKEN.findall(word))
    if len(_SPLIT) >= _PLAIN_MAX:
        _SPLIT.clear()
    _SPLIT[word] = parts
    return parts


# Pieces whose reading ``Engine._replay`` can replay, by word: 0 if it cannot (the piece may make a site), else
# _REPLAYABLE, with _SETS_PREV if the piece sets the previous word and _READS_PREV if a sentence end comes before
# its first word or number (whether the previous word is an abbreviation then matters). The effects of such pieces
# by (word, whitespace after it, reading state).
_SHAPES: Final[dict[str, int]] = {}
_REPLAYABLE: Final = 1
_SETS_PREV: Final = 2
_READS_PREV: Final = 4
# (previous word or None if kept, sentence_start, word_end, stop, in_fence, in_code, in_math, display_math, in_quote,
#  in_url, prose words, whitespace held or None, mode)
_Effect = tuple[str | None, bool, bool, str, bool, bool, bool, bool, bool, bool, int, str | None, int]
_EFFECTS: Final[dict[tuple[object, ...], _Effect]] = {}


def _replayable(word: str) -> int:
    """What ``_SHAPES`` holds for a word."""
    shape = _REPLAYABLE
    for part in _SPLIT.get(word) or _split(word) or ("@",):
        first = part[0]
        if first.isalpha():
            low = part.lower()
            if low in _ROOT.children or low in _URL_WORDS or CURLY in low or "'" in low:
                shape = 0
                break
            shape |= _SETS_PREV
        elif first.isdigit() or (first == "$" and part[1:2].isdigit()):
            shape |= _SETS_PREV
        elif first in _STOPS and not shape & _SETS_PREV:
            shape |= _READS_PREV
        elif first == "@" or first == "'" or first == CURLY:
            shape = 0
            break
    if len(_SHAPES) >= _PLAIN_MAX:
        _SHAPES.clear()
    _SHAPES[word] = shape
    return shape


def _lead(piece: str) -> str:
    match = _TOKEN.match(piece)
    lead = _lower(match.group()) if match else ""
    if len(_LEAD) >= _PLAIN_MAX:
        _LEAD.clear()
    _LEAD[piece] = lead
    return lead


# Whitespace runs held after a sentence end or with a line break (Engine._settle), by run: where the first line
# break is ("\r" or "\n", -1 if none), the first "\n" and the next, whether the line between them is blank ("", " "
# or "  "), whether the break ends a paragraph (a blank line follows it), and whether what precedes the break can be
# a site ("", " " or "  ", at most one space inside a paragraph).
_BREAKS: Final[dict[str, tuple[int, int, int, bool, bool, bool]]] = {}


def _breaks(run: str) -> tuple[int, int, int, bool, bool, bool]:
    brk = run.find("\n")
    cr = run.find("\r")
    if cr >= 0 and (brk < 0 or cr < brk):
        brk = cr
    nl = run.find("\n")
    end = run.find("\n", nl + 1) if nl >= 0 else -1
    # A blank line: "", " " or "  " between the first two "\n" (a "\r\n" file keeps its blank lines as they are).
    blank = nl >= 0 and 0 <= end - nl - 1 <= 2 and run[nl + 1 : end] in ("", " ", "  ")
    paragraph = blank and brk == nl  # the line that ends here ends its paragraph
    ends_line = brk >= 0 and run[:brk] in ("", " ", "  ") and (paragraph or brk <= 1)
    shape = (brk, nl, end, blank, paragraph, ends_line)
    if len(run) < _SHORT:
        if len(_BREAKS) >= _PLAIN_MAX:
            _BREAKS.clear()
        _BREAKS[run] = shape
    return shape


def _lower(word: str) -> str:
    return word.lower().replace(CURLY, "'")


@dataclass(slots=True)
class Site:
    cls: WordClass
    variant: int  # the variant present in the text (after marking: the one written)
    context: str  # the previous word, lowercased ("" at the start)


@dataclass(slots=True)
class _State:
    prev: str = ""
    sentence_start: bool = True
    in_fence: bool = False
    in_code: bool = False
    in_math: bool = False
    display_math: bool = False
    in_quote: bool = False
    in_url: bool = False
    json: bool | None = None  # decided at the first visible token (or the second, after a "[")
    bracket: bool = False
    word_end: bool = False  # the last token was a prose word
    stop: str = ""  # the last token was a sentence end (".!?:") right after a prose word: spacing may follow

    @property
    def protected(self) -> bool:
        return self.in_fence or self.in_code or self.in_math or self.in_quote or self.in_url or bool(self.json)


class Engine:
    """Reads text token by token; finds sites; with a key, rewrites each site to the keyed variant.

    ``spacing=False`` leaves the whitespace after sentence ends as it is when marking (words and apostrophes only);
    reading is unchanged.
    """

    def __init__(self, key: TextKey | None = None, level: int = 2, spacing: bool = True) -> None:
        self.key = key
        self.level = level
        self.spacing = spacing
        self.state = _State()
        # Without a key the engine only reads (detection), and it reads an answer that looks like JSON as prose:
        # putting a "{" in front of a marked text cannot hide it. Sites the marker never wrote score like unmarked
        # text (a hit with probability 1/k), so the p-value stays exact.
        if key is None:
            self.state.json = False
        self.sites: list[Site] = []
        self.changed = 0  # sites rewritten
        self.changed_spacing = 0  # of which whitespace after a sentence end
        self.words = 0  # prose words seen
        self._pending = ""  # text not yet tokenised (an unfinished token)
        self._held: list[str] = []
        # Whitespace after a sentence end, or with a line break in prose, held until the next token (_run).
        self._space: list[str] | None = None
        self._out: list[str] = []
        # Which short way the next streamed piece may take (``_step``): one of _SLOW ... _SPACED, and for _HELD the
        # words that would continue the held phrase start.
        self._mode = _SLOW
        self._continues: dict[str, _Trie] = {}
        self._held_low = ""  # the held word lowercased
        self._note_mode()

    # keyed choices ----------------------------------------------------------------------------------
    def choice(self, cls: WordClass, context: str) -> int:
        assert self.key is not None
        unit = (self.key.secret, cls.cid, context)
        chosen = _CHOICES.get(unit)
        if chosen is None:
            digest = hashlib.blake2b(f"{cls.cid}\x00{context}".encode(), key=self.key.secret, digest_size=8).digest()
            chosen = int.from_bytes(digest, "big") % len(cls.variants)
            if len(_CHOICES) >= _CHOICES_MAX:
                _CHOICES.clear()
            _CHOICES[unit] = chosen
        return chosen

    # streaming --------------------------------------------------------------------------------------
    def feed(self, text: str) -> str:
        """Take the next piece of text; return what can be released now."""
        if text.isalnum():
            self._pending += text  # part of a word: nothing to read yet
            return ""
        # Tokenise up to the last whitespace: what follows may be an unfinished word. Most deltas have one space at
        # most, and letters, digits or marks after it (" word", "e wo", " (") or nothing ("rd, "): cut there.
        cut = _CUTS.get(text)
        if cut is None:
            if " " not in text and text.isprintable():
                self._pending += text  # no whitespace: nothing to read yet (nothing is waiting in _out between calls)
                return ""
            cut = _cut(text)
            if cut is None:
                self._pending += text  # no whitespace either ("\u200b")
                return ""
        # A streamed chunk is most often one word and its space ("word "), and a key of _PLAIN is one piece. With
        # nothing waiting in _out between calls, the short ways below return what _step would release.
        head, self._pending, pending = cut[0], cut[1], self._pending
        low: str | None
        if head is None:
            # A space and a word (" word"): the word before it and a space, and what _PLAIN holds for it.
            known = _WITH_SPACE.get(pending)
            data, low = known if known is not None else _spaced(pending)
        else:
            data = pending + head
            low = _PLAIN.get(data)
        mode = self._mode
        if low:
            # A plain word: released as it is, as _tokens would.
            if mode in (_PROSE, _PROTECTED):
                st = self.state
                st.prev = low
                st.sentence_start = st.word_end = False
                st.stop = ""
                if mode == _PROSE:
                    self.words += 1
                return data
            if mode == _HELD:
                if low not in self._continues:
                    # ... and the word held before it, which it shows is not a phrase (as _step does).
                    st = self.state
                    st.prev = low
                    st.sentence_start = st.word_end = False
                    st.stop = ""
                    self.words += 2
                    self._mode = _PROSE
                    held, self._held = self._held, []
                    return held[0] + " " + data
            elif mode == _SPACED:
                space = self._space
                st = self.state
                if space is not None and len(space) == 1 and (space[0] == " " or space[0] == "  ") and st.stop:
                    # One or two spaces after a sentence end, then a plain word (what _settle and _step do).
                    run = space[0]
                    self._space = None
                    stop = st.stop
                    st.stop = ""
                    if stop != ":" and not data[0].islower():
                        run = self._spacing(SENTENCE_SPACE, len(run) - 1)
                    st.in_url = False
                    mode = self._fast()
                    if mode:
                        st.prev = low
                        st.sentence_start = st.word_end = False
                        if mode == _PROSE:
                            self.words += 1
                        self._mode = mode
                        return run + data
                    self._out.append(run)
                    self._note_mode()
            self._step(data, low)
        elif low is None or data[0].isspace():
            if len(data) >= _SHORT:
                self._tokens(data)
            else:
                word = data.rstrip()
                run = data[len(word) :]
                if not word:
                    self._piece("", run)  # whitespace alone
                    self._note_mode()
                elif run != " " and mode in (_PROSE, _PROTECTED) and " " not in word and word.isprintable():
                    self._line_end(word, run, mode)  # a word, then a line break or a wider space
                else:
                    self._words(data)  # piece by piece (a streamed chunk)
        elif mode == _PROSE:
            start = _STARTS.get(data)
            if start is not None:
                return "" if self._start(start) else data  # what _step does with it
            stopped = _STOPPED.get(data)
            if stopped is not None:
                self._stopped(data[:-1], stopped, " ")
                return self._release()
            word = data[:-1]
            if word.isalpha():
                self._step(data, low)  # a word of the lexicon
            else:
                self._replay(word, " ", mode)  # punctuation, a number, markup (what _step does with it)
        elif mode == _PROTECTED and not data[:-1].isalpha():
            self._replay(data[:-1], " ", mode)
        else:
            self._step(data, low)
        return self._release()

    def flush(self) -> str:
        """The end of the text: release everything."""
        self._tokens(self._pending)
        self._pending = ""
        while self._held:
            self._resolve(final=True)
        if self._space is not None:
            self._settle("")
        self._note_mode()
        return self._release()

    def held(self) -> str:
        """The end of the text fed so far that is not released yet, as it came (a possible site's words, whitespace
        after a sentence end, an unfinished token): everything before it has been released."""
        space = "".join(self._space) if self._space is not None else ""
        return "".join(self._held) + space + self._pending

    def _note_mode(self) -> int:
        """Which short way ``_step`` may take from the state the token machine left (also returned)."""
        held = self._held
        mode = _SLOW
        if held:
            if len(held) == 2 and held[1] == " " and self._space is None:
                low = _lower(held[0])
                node = _ROOT.children.get(low)
                if node is not None and node.children and not node.terminals:
                    mode = _HELD
                    self._held_low = low
                    self._continues = node.children
        elif self._space is not None:
            if not self.state.in_url:
                mode = _SPACED
        else:
            mode = self._fast()
        self._mode = mode
        return mode

    def _words(self, data: str) -> None:
        """A streamed chunk (it ends with whitespace): the releases and the state of ``_tokens(data)``, piece by
        piece, without the token machine for the pieces it knows (``_step``).

        A piece is a word with what is attached to it ("word", "word,", "end.") and the whitespace after it.
        """
        if data[0] != " " and data.isprintable() and "  " not in data:
            # Words and single spaces (the chunk ends with one): each word and its space is a piece.
            for word in data[:-1].split(" "):
                known = _WITH_SPACE.get(word)
                self._step(*(known if known is not None else _spaced(word)))
            return
        pairs = [(word + " ", run) if run == " " and word else (word, run) for word, run in _RUNS.findall(data)]
        for piece, run in pairs:
            if run == " " and piece:
                low = _PLAIN.get(piece)
                if low is None:
                    low = _plain_word(piece)
                self._step(piece, low)
                continue
            # A word before a line break or a wider space, or whitespace alone.
            mode = self._mode
            if piece and mode == _SPACED:
                self._settle(piece)
                mode = self._fast()
            if piece and mode in (_PROSE, _PROTECTED):
                self._line_end(piece, run, mode)
            else:
                self._piece(piece, run)
                self._note_mode()

    def _line_end(self, word: str, run: str, mode: int) -> None:
        """A word (with what is attached to it) and the whitespace after it, which is not a single space, from prose
        or a protected span with nothing held: what ``_piece`` does, without the token machine for a plain word or
        a sentence end."""
        if word not in _PLAIN:
            _plain_word(word)
        low = _BARE.get(word, "")
        if low:
            st = self.state
            self._out.append(word)
            st.prev = low
            st.sentence_start = False
            st.stop = ""
            st.word_end = mode == _PROSE
            if mode == _PROSE:
                self.words += 1
            self._run(run)
            self._note_mode()
            return
        if mode == _PROSE and word[-1] in _STOPS:
            spaced = word + " "
            stopped = _STOPPED.get(spaced)
            if stopped is None and spaced not in _PLAIN:
                _plain_word(spaced)
                stopped = _STOPPED.get(spaced)
            if stopped is not None:
                self._stopped(word, stopped, run)
                return
        self._replay(word, run, mode)

    def _step(self, piece: str, low: str) -> None:
        """One piece that is a word and a single space ("word ", "word, ", "end. "; ``low`` is what ``_PLAIN``
        holds for it): what ``_tokens`` does with it, without the token machine if the piece is known.

        A plain word is released at once; a word that only starts a phrase is held, with its space, until the next
        word shows whether the phrase goes on; a sentence end holds the space after it until the next word shows
        whether a sentence opens there (the spacing site).
        """
        mode = self._mode
        if not mode:
            self._piece(piece[:-1], " ")
            self._note_mode()
            return
        st = self.state
        out = self._out
        if mode == _HELD:
            lead = low or _LEAD.get(piece) or _lead(piece)
            if lead in self._continues:
                self._piece(piece[:-1], " ")  # the phrase may go on
                self._note_mode()
                return
            # Not a phrase: the held word is a plain word (what _release_first does).
            out.append(self._held[0])
            out.append(" ")
            self._held = []
            st.prev = self._held_low
            st.sentence_start = st.word_end = False
            self.words += 1
            mode = _PROSE
        elif mode == _SPACED:
            self._settle(piece)
            mode = self._fast()
        if low and mode:
            out.append(piece)
            st.prev = low
            st.sentence_start = st.word_end = False
            st.stop = ""
            if mode == _PROSE:
                self.words += 1
            self._mode = mode
            return
        if mode == _PROSE:
            start = _STARTS.get(piece)
            if start is not None:
                if not self._start(start):
                    out.append(piece)
                return
            word = piece[:-1]
            if word.isalpha():
                low = word.lower()
                if low in _ROOT.children:
                    # A word of the lexicon that is neither plain nor only a phrase start: held as a site until the
                    # two tokens after it are known (the token machine then resolves it), or plain.
                    st.word_end = False
                    st.stop = ""
                    if low in _ROOT_WORDS or (st.sentence_start and low in _OPENER_WORDS):
                        self._held = [word, " "]
                        self._mode = _SLOW
                    else:
                        out.append(piece)
                        st.prev = low
                        st.sentence_start = False
                        self.words += 1
                        self._mode = mode
                    return
            stopped = _STOPPED.get(piece)
            if stopped is not None:
                self._stopped(piece[:-1], stopped, " ")
                return
        elif mode == _PROTECTED and piece[:-1].isalpha():
            # In code, math, a quote or JSON any word is released as it is (a URL word switches the URL mode on,
            # and its space off again).
            out.append(piece)
            st.prev = _lower(piece[:-1])
            st.sentence_start = st.word_end = False
            st.stop = ""
            self._mode = mode
            return
        if mode:
            self._replay(piece[:-1], " ", mode)
        else:
            self._piece(piece[:-1], " ")
            self._note_mode()

    def _replay(self, word: str, run: str, mode: int) -> None:
        """``_piece(word, run)`` from prose or a protected span with nothing held, replayed from ``_EFFECTS`` when
        the same piece was read before from the same state.

        Only for pieces that cannot make a site: no word of the lexicon, no apostrophe, no URL word, nothing opaque
        (``_replayable``). What such a piece does then depends on the reading state alone (the flags below), and on
        the previous word only where a sentence end may come before any word of its own (whether that word is an
        abbreviation) and through whether there is one (a line break is held only after one): both are part of the
        key too. Bullets, numbers, brackets, quotes, emphasis and hyphenated words come back in every answer.
        """
        shape = _SHAPES.get(word)
        if shape is None:
            shape = _replayable(word)
        if not shape:
            self._piece(word, run)
            self._note_mode()
            return
        st = self.state
        state = (
            word,
            run,
            st.sentence_start,
            st.word_end,
            shape & _READS_PREV and len(st.prev) > 1 and st.prev not in _ABBREVIATIONS,
            not st.prev,  # a line break is held only after a word or a number (_run)
            mode == _PROTECTED and (st.in_fence, st.in_code, st.in_math, st.display_math, st.in_quote, st.json),
        )
        known = _EFFECTS.get(state)
        if known is None:
            words = self.words
            sites = len(self.sites)
            self._piece(word, run)
            if len(self.sites) != sites or self._held:
                self._note_mode()  # cannot happen for the pieces _replayable lets through; never cached
                return
            held = self._space
            effect: _Effect = (
                st.prev if shape & _SETS_PREV else None,
                st.sentence_start,
                st.word_end,
                st.stop,
                st.in_fence,
                st.in_code,
                st.in_math,
                st.display_math,
                st.in_quote,
                st.in_url,
                self.words - words,
                None if held is None else "".join(held),
                self._note_mode(),
            )
            if len(_EFFECTS) >= _PLAIN_MAX:
                _EFFECTS.clear()
            _EFFECTS[state] = effect
            return
        prev, st.sentence_start, st.word_end, st.stop, st.in_fence, st.in_code, st.in_math, st.display_math, \
            st.in_quote, st.in_url, words, space, self._mode = known  # fmt: skip
        if prev is not None:
            st.prev = prev
        self.words += words
        self._out.append(word)
        if space is None:
            self._out.append(run)
        else:
            self._space = [space]

    def _start(self, start: tuple[str, dict[str, _Trie], str, bool]) -> bool:
        """A word that starts a phrase, and its space, from prose (``start``: what _STARTS holds for the piece):
        held until the next word shows whether the phrase goes on (True), or a plain word here (False: the caller
        releases the piece), an opener's first word inside a sentence."""
        st = self.state
        st.word_end = False
        st.stop = ""
        if start[3] or st.sentence_start:
            self._held = [start[2], " "]
            self._held_low = start[0]
            self._continues = start[1]
            self._mode = _HELD
            return True
        st.prev = start[0]
        st.sentence_start = False
        self.words += 1
        self._mode = _PROSE
        return False

    def _stopped(self, word: str, stopped: tuple[str, str], run: str) -> None:
        """A plain word and its sentence end ("end."): released, and the whitespace after it held (a spacing
        site, settled when the next word comes)."""
        st = self.state
        self._out.append(word)
        st.prev, st.stop = stopped
        st.sentence_start = st.stop != ":"
        st.word_end = False
        self._space = [run]
        self.words += 1
        self._mode = _SPACED

    def _piece(self, word: str, run: str, following: str = "") -> None:
        """A word (with what is attached to it) and the whitespace after it, through the token machine.

        ``run`` is the whitespace after the word ("" when the text read so far ends with it, or when the caller
        reads the whitespace itself), ``following`` the piece after the run if it is known ("" if not): where a
        phrase may start, it shows whether the phrase goes on.
        """
        st = self.state
        out = self._out
        if word:
            parts = _SPLIT.get(word)
            if parts is None:
                parts = _split(word)
            if not parts:
                self._opaque(word)
            end = len(parts) - 1
            for j, part in enumerate(parts):
                # Most words: with nothing held, a word that cannot start a site here is released at once, as
                # _plain would, without its calls.
                if part.isalpha() and not self._held and self._space is None and not st.in_url:
                    low = part.lower()
                    if st.json is False and not (st.in_fence or st.in_code or st.in_math or st.in_quote):
                        if low in _URL_WORDS:
                            self._token(part)
                            continue
                        node = _ROOT.children.get(low)
                        if node is None:
                            plain = not (st.sentence_start and low in _OPENER_WORDS)
                        elif node.terminals:
                            plain = False  # a one-word site
                        elif j < end:
                            plain = True  # punctuation follows: the phrase cannot go on
                        elif run == " ":
                            # The next word decides whether the phrase goes on.
                            lead = _LEAD.get(following)
                            if lead is None:
                                lead = _lead(following)
                            plain = bool(following) and lead not in node.children
                        elif run:
                            plain = True  # a line break or wider space follows
                        else:
                            plain = bool(following) and following != " "  # ditto, read by the caller
                        if plain:
                            out.append(part)
                            st.prev = low
                            st.sentence_start = False
                            st.word_end = True
                            st.stop = ""
                            self.words += 1
                            continue
                    elif st.json is not None:
                        # In code, math, a quote or JSON: released as it is, never a site.
                        out.append(part)
                        if low in _URL_WORDS:
                            st.in_url = True
                        st.prev = low
                        st.sentence_start = st.word_end = False
                        st.stop = ""
                        continue
                if self._held:
                    self._held.append(part)
                    self._resolve(final=False)
                else:
                    self._plain(part, candidate=True)  # what _token does with it
        if run == " " and not self._held and self._space is None and not st.stop:
            out.append(" ")  # what _token does with a single space, without the call
            st.in_url = st.word_end = False
        elif run:
            self._token(run)

    def _tokens(self, text: str) -> None:
        token = self._token
        st = self.state
        out = self._out
        pieces = _PIECES.findall(text)
        last = len(pieces) - 1
        plain_get = _PLAIN.get
        lead_get = _LEAD.get
        starts_get = _STARTS.get
        bare_get = _BARE.get
        stopped_get = _STOPPED.get
        # While nothing is held, plain words (most of prose) are appended with no other work: the state they leave
        # (the previous word; not a sentence start, nor a stop; a word end unless a comma or a space followed) is
        # written once, when a piece that needs the engine comes. Inside a protected span (code, math, a quote, JSON)
        # the same words are not counted as prose (``fast`` is then 2), and only they take the short way.
        fast = self._fast()
        prev = ""
        ended = False
        words = 0
        for i, piece in enumerate(pieces):
            if fast:
                low = plain_get(piece)
                if low is None:
                    low = _plain_word(piece)
                if low:
                    out.append(piece)
                    prev = low
                    ended = False
                    if fast == 1:
                        words += 1
                    continue
                if piece == " " and (prev or not st.stop):
                    # A single space (a streamed chunk's last piece) after a word that is not a sentence end.
                    out.append(piece)
                    if prev:
                        ended = False
                    else:
                        st.word_end = False
                    continue
                bare = bare_get(piece)
                if bare is not None:
                    out.append(piece)
                    prev = bare
                    ended = fast == 1  # a word end in prose only
                    if fast == 1:
                        words += 1
                    continue
                start = starts_get(piece) if fast == 1 else None
                if start is not None:
                    following = pieces[i + 1]
                    lead = lead_get(following)
                    if lead is None:
                        lead = _lead(following)
                    if lead not in start[1]:
                        out.append(piece)
                        prev = start[0]
                        ended = False
                        words += 1
                        continue
                stopped = stopped_get(piece) if fast == 1 else None
                if stopped is not None:
                    # The word, its stop, and the space after it, settled at once: the next piece is known.
                    out.append(piece[:-1])
                    st.prev, stop = stopped
                    st.sentence_start = stop != ":"
                    st.word_end = False
                    st.stop = prev = ""
                    words += 1
                    if stop != ":" and not pieces[i + 1][0].islower():
                        out.append(self._spacing(SENTENCE_SPACE, 0))
                    else:
                        out.append(" ")
                    continue
                if prev:
                    st.prev = prev
                    st.sentence_start = False
                    st.word_end = ended
                    st.stop = prev = ""
            if piece[0].isspace():
                token(piece)
                fast = self._fast()
                continue
            if piece[-1] == " ":
                word = piece[:-1]
                shape = _SHAPES.get(word) if fast else 0
                if shape is None:
                    shape = _replayable(word)
                if shape:
                    self._replay(word, " ", fast)  # punctuation, a number, markup, with nothing held
                else:
                    self._piece(word, " ", pieces[i + 1])
            else:
                self._piece(piece, "", pieces[i + 1] if i < last else "")
            fast = self._fast()
        if prev:
            st.prev = prev
            st.sentence_start = False
            st.word_end = ended
            st.stop = ""
        self.words += words
        self._note_mode()

    def _fast(self) -> int:
        """Whether plain words can be appended as they come: 1 in prose, 2 in a protected span, 0 if not at all
        (a phrase or a spacing site held, a URL, or the first token not yet seen)."""
        st = self.state
        if self._held or self._space is not None or st.in_url or st.json is None:
            return 0
        return 2 if st.json or st.in_fence or st.in_code or st.in_math or st.in_quote else 1

    def _opaque(self, piece: str) -> None:
        """An address, path or identifier: released as it is; it ends any phrase being held."""
        while self._held:
            self._resolve(final=True)
        if self._space is not None:
            self._settle(piece)
        st = self.state
        st.word_end = False
        st.stop = ""
        if st.json is None:
            st.json = piece[0] == "{" or (piece[0] == "[" and piece[1:2] in _JSON_AFTER_BRACKET)
        for char in piece:
            if char in '`$"“”«»':
                self._punct(char)  # keep code, math and quote spans balanced
        self._out.append(piece)
        st.prev = "#"
        st.sentence_start = piece[-1] in _SENTENCE_END

    def _release(self) -> str:
        if not self._out:
            return ""
        out = "".join(self._out)
        self._out.clear()
        return out

    # the token machine ------------------------------------------------------------------------------
    def _token(self, token: str) -> None:
        if self._held:
            self._held.append(token)
            self._resolve(final=False)
            return
        if token == " " and self._space is None and not self.state.stop:
            self._out.append(token)  # what _plain does with a single space (most tokens), without its work
            self.state.in_url = False
            self.state.word_end = False
            return
        self._plain(token, candidate=True)

    def _plain(self, token: str, candidate: bool) -> None:
        """One token outside any held phrase: emit it (or start holding a possible site) and update the state."""
        st = self.state
        first = token[0]
        if first == " " or first.isspace():
            self._run(token)
            return
        if self._space is not None:
            self._settle(token)
        after_word = st.word_end
        st.word_end = False
        st.stop = ""
        if st.json is None:
            # An answer that opens with "{", or with "[" and then "{", "[", '"' or "]", is JSON ("[1] note" is not).
            if st.bracket:
                st.json = first in _JSON_AFTER_BRACKET
            elif first == "[":
                st.bracket = True
            else:
                st.json = first == "{"
        if first.isalpha():
            low = token.lower()
            if CURLY in low:
                low = low.replace(CURLY, "'")
            if low in _URL_WORDS:
                st.in_url = True
            if not st.protected:
                if candidate and (low in _ROOT_WORDS or (st.sentence_start and low in _OPENER_WORDS)):
                    self._held.append(token)
                    return
                if "'" in low:
                    token = self._apostrophe(token)
                self.words += 1
                st.word_end = True
            st.prev = low
            st.sentence_start = False
            self._out.append(token)
            return
        self._out.append(token)
        if first.isdigit() or (first == "$" and token[1:2].isdigit()):
            st.prev = "#"
            st.sentence_start = False
            return
        self._punct(token)
        if after_word and not st.protected:
            if first in _CLOSERS:
                st.word_end = True
            elif first in _STOPS and len(st.prev) > 1 and st.prev not in _ABBREVIATIONS:
                st.stop = first

    def _run(self, run: str) -> None:
        """Whitespace outside any held phrase: written, or held until the next token comes.

        Held: the whitespace after a sentence end (the next token shows whether a sentence opens there) and, in
        prose after a word or a number, a run with a line break (a blank line may follow, split between chunks of a
        stream). ``_settle`` decides their sites and writes them.
        """
        st = self.state
        st.word_end = False  # whitespace ends a word: "word   ." is no sentence end, as "word ." is not
        if self._space is not None:
            self._space.append(run)  # a run split between two chunks of a stream
        elif st.stop or (
            "\n" in run and st.prev and st.json is False and not (st.in_fence or st.in_code or st.display_math)
        ):
            self._space = [run]
        else:
            self._whitespace(run)

    def _whitespace(self, run: str) -> None:
        st = self.state
        self._out.append(run)
        if "\n" in run:
            st.sentence_start = True
            st.in_url = False
            st.in_quote = False
            st.in_math = st.in_math and st.display_math  # inline math ends with its line
        elif st.in_url:
            st.in_url = False

    def _settle(self, following: str) -> None:
        """Held whitespace (``_run``), now that the next token (``following``, "" at the end) is known.

        After a sentence end, a run with a line break: what precedes the first break is a site, "" or " " inside a
        paragraph (trailing spaces collapse in Markdown and HTML; two would be a hard line break there, so a run with
        two is not a site), "", " " or "  " at the end of a paragraph, before a blank line (where a hard break does
        nothing). A run without one: " " or "  " before anything but a lowercase word is a site (the space between
        two sentences; "e.g. the" or "approx. 5" never are, being opaque or listed abbreviations). In any held run,
        the line after the first break, if it is blank ("", " " or "  " before the next break), is a site: the blank
        line between two paragraphs. Anything else is kept.
        """
        parts, self._space = self._space, None
        assert parts is not None
        run = parts[0] if len(parts) == 1 else "".join(parts)
        stop = self.state.stop
        self.state.stop = ""
        shape = _BREAKS.get(run)
        if shape is None:
            shape = _breaks(run)
        brk, nl, end, blank, paragraph, ends_line = shape
        if brk < 0:
            if stop and stop != ":" and (run == " " or run == "  ") and following and not following[0].islower():
                # The space between two sentences (most sites): what _whitespace does with it.
                self._out.append(self._spacing(SENTENCE_SPACE, len(run) - 1))
                self.state.in_url = False
                return
            self._whitespace(run)
            return
        if stop and ends_line:
            written = self._spacing(PARAGRAPH_END if paragraph else LINE_END, brk)
            run = written + run[brk:]
            nl += len(written) - brk
            end += len(written) - brk
        if blank:
            run = run[: nl + 1] + self._spacing(BLANK_LINE, end - nl - 1) + run[end:]
        self._whitespace(run)

    def _spacing(self, cls: WordClass, present: int) -> str:
        """A spacing site: record it, and return the whitespace to write (the keyed variant when marking)."""
        written = present
        if self.key is not None and self.spacing:
            written = self.choice(cls, self.state.prev)
            if written != present:
                self.changed += 1
                self.changed_spacing += 1
        self.sites.append(Site(cls, written, self.state.prev))
        return cls.variants[written][0]

    def _punct(self, token: str) -> None:
        st = self.state
        if token.startswith("```"):
            st.in_fence = not st.in_fence
        elif st.in_fence:
            return
        elif token == "`":
            st.in_code = not st.in_code
        elif token in ("$", "$$"):
            st.in_math = not st.in_math
            st.display_math = st.in_math and token == "$$"
        elif token in _QUOTES_OPEN and not st.in_quote:
            st.in_quote = True
        elif token in ('"', "”", "»") and st.in_quote:
            st.in_quote = False
        elif token == "@":
            st.in_url = True
        elif token in _SENTENCE_END:
            st.sentence_start = True
        elif token in _BULLETS and st.sentence_start:
            pass  # a list bullet: the sentence still starts after it
        elif token in ":/" and st.in_url:
            pass
        else:
            st.sentence_start = False

    def _resolve(self, final: bool) -> None:
        """Decide what the held tokens are: a site (marked and released) or plain words."""
        held = self._held
        count = len(held)
        node = _ROOT
        j = 0
        best: tuple[int, list[tuple[WordClass, int]]] | None = None
        exhausted = False
        while True:
            if j >= count:
                exhausted = True
                break
            token = held[j]
            if not token[0].isalpha():
                break
            child = node.children.get(token.lower() if CURLY not in token else _lower(token))
            if child is None:
                break
            node = child
            j += 1
            if node.terminals:
                best = (j, node.terminals)
            if j >= count:
                exhausted = True
                break
            if held[j] != " ":
                break
            j += 1
        if exhausted and node.children and not final and len(held) < _MAX_HELD_TOKENS:
            return  # the phrase may still go on
        if best is None:
            self._release_first()
            return
        end, terminals = best
        # Conditions look at up to two tokens after the phrase: wait for them unless the text has ended.
        if not final and len(held) < end + 2 and len(held) < _MAX_HELD_TOKENS:
            return
        site = self._site(terminals, held, end)
        if site is None:
            self._release_first()
            return
        self._held = []
        self._write_site(site, held[:end])
        for token in held[end:]:
            self._token(token)

    def _write_site(self, site: tuple[WordClass, int], phrase: list[str]) -> None:
        """A word site (``phrase``: its tokens as they are): recorded, and written with the keyed variant."""
        cls, variant = site
        written = variant
        if self.key is not None and cls.level <= self.level:
            written = self.choice(cls, self.state.prev)
            if written != variant:
                phrase = [_cased(" ".join(cls.variants[written]), phrase[0])]
                self.changed += 1
        self.sites.append(Site(cls, written, self.state.prev))
        if "'" in phrase[-1] or CURLY in phrase[-1]:
            phrase[-1] = self._apostrophe(phrase[-1])
        self.state.prev = cls.variants[written][-1]
        self.state.sentence_start = False
        self.state.word_end = True
        self.words += len(cls.variants[variant])
        self._out.extend(phrase)

    def _apostrophe(self, word: str) -> str:
        """The apostrophe of a contraction or possessive is a site of its own: straight or curly."""
        present = 1 if CURLY in word else 0
        written = present
        if self.key is not None:
            written = self.choice(APOSTROPHE, self.state.prev)
            if written != present:
                word = word.replace(APOSTROPHES[present], APOSTROPHES[written])
                self.changed += 1
        self.sites.append(Site(APOSTROPHE, written, self.state.prev))
        return word

    def _release_first(self) -> None:
        held, self._held = self._held, []
        self._plain(held[0], candidate=False)
        for token in held[1:]:
            self._token(token)

    def _site(self, terminals: list[tuple[WordClass, int]], held: list[str], end: int) -> tuple[WordClass, int] | None:
        st = self.state
        first = held[0]
        # "I" is always capitalised ("I am", "I'm"); any other capitalised word inside a sentence may be a name.
        capital = first[0].isupper() and not (first[0] == "I" and (len(first) == 1 or first[1] in "'\u2019"))
        after = held[end] if end < len(held) else ""
        after2 = held[end + 1] if end + 1 < len(held) else ""
        for cls, variant in terminals:  # openers first (_trie)
            if cls.opener:
                if st.sentence_start and after == ",":
                    return cls, variant
                continue
            if capital and not st.sentence_start:
                continue  # a capitalised word inside a sentence may be a name
            if (cls.before is not None and st.prev not in cls.before) or st.prev in cls.not_before:
                continue
            if cls.then_word and not (
                after == " " and after2[:1].isalpha() and after2[:1].islower() and _lower(after2) != "not"
            ):
                continue
            if cls.then_number and not (after == " " and after2[:1].isdigit()):
                continue
            if cls.participle is not None and (
                after != " " or not after2[:1].isalpha() or participle(_lower(after2)) != cls.participle
            ):
                continue
            return cls, variant
        return None


def _cased(replacement: str, original: str) -> str:
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def mark(text: str, key: TextKey, strength: Strength = "standard") -> str:
    """The text with every site it has written with the keyed variant."""
    engine = Engine(key, LEVELS[strength])
    return engine.feed(text) + engine.flush()


@dataclass(slots=True)
class MarkStats:
    sites: int = 0
    changed: int = 0
    words: int = 0
    by_class: dict[int, int] = field(default_factory=dict)


def sites(text: str) -> list[Site]:
    """Every site of a text, as the detector sees them."""
    engine = Engine()
    engine.feed(text)
    engine.flush()
    return engine.sites


@dataclass(frozen=True, slots=True)
class Scored:
    """One key's agreement with the distinct (class, context) sites of a text."""

    hits: int
    variants: list[int]  # the number of variants of each site scored
    agreed: list[tuple[Site, bool]]

    def detection(self, key: TextKey, alpha: float, tests: int) -> Detection:
        ks = self.variants
        # NumPy and SciPy load on the first detection: the gateway marks answers without them.
        from distillguard.watermark.stats import poisson_binomial_sf

        p = min(1.0, poisson_binomial_sf(self.hits, ks) * tests) if ks else 1.0
        return Detection(SCHEME, key.key_id, len(ks), self.hits, sum(1 / k for k in ks), p, alpha, tests)

    def restricted(self, max_level: int, formatting: bool = True) -> Scored:
        """The same scores over fewer classes: those up to ``max_level``, without the formatting channels if asked."""
        kept = [(s, hit) for s, hit in self.agreed if s.cls.level <= max_level and (formatting or not s.cls.formatting)]
        return Scored(sum(hit for _, hit in kept), [len(s.cls.variants) for s, _ in kept], kept)


def varied_channels(found: Iterable[Site]) -> frozenset[int]:
    """The formatting channels (class ids) that show two variants or more among ``found``: the only ones scored.

    A text whose quotes or whitespace were normalised shows one variant only, and its formatting sites would be
    misses half the time, drowning the word choices. Dropping them is decided from the text alone (never the key),
    so under the null hypothesis the sites kept are still hits with probability 1/k each: the p-value stays exact.
    A marked text with n sites of a channel shows one variant with probability k ** (1 - n) (k variants), a small loss.
    """
    seen: dict[int, int] = {}
    varied: set[int] = set()
    for s in found:
        if s.cls.formatting:
            first = seen.setdefault(s.cls.cid, s.variant)
            if first != s.variant:
                varied.add(s.cls.cid)
    return frozenset(varied)


_FORMATTING_IDS = frozenset(c.cid for c in FORMATTING)


def score_sites(
    found: Sequence[Site], key: TextKey, max_level: int = 2, only: set[tuple[int, str]] | None = None
) -> Scored:
    """Score each (class, previous word) once: the first time it occurs (and, with ``only``, if it is in it).

    Formatting channels count only where the text shows both their variants (``varied_channels``).
    """
    engine = Engine(key)
    dropped = _FORMATTING_IDS - varied_channels(found)
    seen: set[tuple[int, str]] = set()
    ks: list[int] = []
    agreed: list[tuple[Site, bool]] = []
    hits = 0
    for s in found:
        unit = (s.cls.cid, s.context)
        if s.cls.level > max_level or unit in seen or s.cls.cid in dropped or (only is not None and unit not in only):
            continue
        seen.add(unit)
        ks.append(len(s.cls.variants))
        hit = engine.choice(s.cls, s.context) == s.variant
        hits += hit
        agreed.append((s, hit))
    return Scored(hits, ks, agreed)


# Each key is tested over: (lexicon level) x (with the formatting channels, or words only).
TESTS_PER_KEY = 4


def detect(
    text: str,
    keys: Sequence[TextKey],
    alpha: float = DEFAULT_ALPHA,
) -> Detection:
    """Whether ``text`` carries the watermark of one of ``keys``, with an exact p-value.

    Each key is tested four times: the sites of the standard lexicon and of the strong one, each with and without the
    formatting channels (apostrophes and spacing). A formatting channel that a normalisation flattened is dropped by
    ``varied_channels``; the words-only test covers one that was scrambled instead (whitespace re-spaced at random
    shows two variants but carries no mark). The best p-value is multiplied by the number of tests (Bonferroni), so
    trying more keys or tests never makes a false detection likelier.
    """
    found = sites(text)
    tests = max(1, TESTS_PER_KEY * len(keys))
    best: Detection | None = None
    for key in keys:
        scored = score_sites(found, key)  # each distinct site's keyed choice computed once per key
        for level in (1, 2):
            for formatting in (True, False):
                result = scored.restricted(level, formatting).detection(key, alpha, tests)
                if best is None or (result.p_value, -result.scored) < (best.p_value, -best.scored):
                    best = result
    if best is None:
        return Detection(SCHEME, None, 0, 0, 0.0, 1.0, alpha, tests)
    return best
