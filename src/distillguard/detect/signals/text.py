"""Text helpers shared by the detectors: the analysis window, tokens and stable hashes."""

from __future__ import annotations

import re
from hashlib import blake2b

# Only the head and the tail of a long prompt are analysed: instructions (CoT scaffolds, "generate N examples",
# grading rubrics) sit at the start or the end, pasted material sits in between, and the gateway's request path
# needs a cost that does not grow with the prompt.
HEAD_CHARS = 1536
TAIL_CHARS = 512

# Scripts written without spaces between words are split into single characters (so shingles become character
# bigrams); everything else is split into runs of letters and digits.
_NO_SPACE_SCRIPTS = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN_RE = re.compile(f"[{_NO_SPACE_SCRIPTS}]|[^\\W_{_NO_SPACE_SCRIPTS}]+")
ASCII_TOKEN_RE = re.compile(r"[a-z0-9]+")
# Scripts whose phrases the rules find by substring (no spaces, or Korean's agglutinated words): Chinese, Japanese,
# Korean, Thai, Lao, Khmer, Myanmar. Substring gates are only checked when one of them is present.
_SUBSTRING_SCRIPTS_RE = re.compile(f"[{_NO_SPACE_SCRIPTS}\u1100-\u11ff\uac00-\ud7af]")
# Lower-case ASCII letters and digits kept, every other byte made a space: bytes.translate + split tokenises an
# ASCII text several times faster than a regex, with the same result as ASCII_TOKEN_RE.
_ASCII_SPACES = bytes(c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256))


def window(text: str) -> str:
    """``text`` itself, or its first HEAD_CHARS and last TAIL_CHARS joined by a newline when it is longer."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def tokens(lower: str, is_ascii: bool) -> list[str]:
    """Word tokens of an already lower-cased text (single characters for Chinese, Japanese, Thai...)."""
    if is_ascii:
        return lower.encode("ascii").translate(_ASCII_SPACES).decode("ascii").split()
    return TOKEN_RE.findall(lower)


def tokens_and_bytes(lower: str, is_ascii: bool) -> tuple[list[str], list[bytes]]:
    """``tokens`` and their UTF-8 forms (for hashing), sharing the work where the text is ASCII."""
    if is_ascii:
        spaced = lower.encode("ascii").translate(_ASCII_SPACES)
        return spaced.decode("ascii").split(), spaced.split()
    toks = TOKEN_RE.findall(lower)
    return toks, [utf8(t) for t in toks]


def needs_substrings(text: str, is_ascii: bool) -> bool:
    """Whether ``text`` has characters of a script that the rules match by substring (see above)."""
    return not is_ascii and _SUBSTRING_SCRIPTS_RE.search(text) is not None


def utf8(text: str) -> bytes:
    """UTF-8 bytes of any str, lone surrogates included (JSON can carry them; the strict codec would raise)."""
    return text.encode("utf-8", "surrogatepass")


def hash_hex16(text: str, person: bytes) -> str:
    """16 hex characters of a BLAKE2b-64 of ``text``, personalised so that different uses never collide."""
    return blake2b(utf8(text), digest_size=8, person=person).hexdigest()


def hash64(text: str, person: bytes) -> int:
    """The same hash as an unsigned 64-bit int."""
    return int.from_bytes(blake2b(utf8(text), digest_size=8, person=person).digest(), "little")
