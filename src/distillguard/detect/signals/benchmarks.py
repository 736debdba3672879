"""Public-benchmark test items in prompts: an index of hashed segments, and the lookup ``extract`` uses.

An evaluation run sends a benchmark's TEST items, usually wrapped in a harness ("Question: ...\\nAnswer: Let's think
step by step", a few-shot prefix, a code fence). Harvesters use the TRAIN splits and look-alike problems instead.
So the index holds the test items only, minus anything that also occurs in a train split, and matching is by
segment rather than whole prompt, which survives the wrapping:

- the text is lower-cased and mapped byte by byte (one ``bytes.translate``): letters, digits and non-ASCII bytes
  are kept, a line break stays a line break, ``. ? !`` end a sentence, ``:`` ends a label, anything else is a space;
- a *segment* is a sentence, a line or a paragraph (lines up to a blank line), with spaces squeezed; a sentence
  or line loses a leading label (anything before its first colon, if that is at most 60 bytes: "Question:", "You
  are an expert Python programmer, and here is your task:"); segments shorter than ``MIN_SEGMENT_BYTES`` are
  ignored (too generic to name a benchmark item);
- it is looked up by CRC-32 first (a C call: the common miss costs ~0.1 us), and a CRC hit is confirmed by its
  64-bit BLAKE2b.

The builder (``scripts/build_benchmark_index.py``) and ``extract`` use this same ``segments`` function, so a test
item and a prompt containing it give the same segments, whatever the exact definition.

The index is package data (``data/benchmarks.bin``). Format (all little-endian): magic ``DGBENCH2``, u16 number of
benchmarks, then per benchmark a u8 name length, the UTF-8 name and a u32 entry count, then per benchmark its
entries sorted by BLAKE2b: the u64 BLAKE2b array followed by the u32 CRC-32 array.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from hashlib import blake2b
from importlib import resources

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"DGBENCH2"
MIN_SEGMENT_BYTES = 40
MIN_SEGMENT_CHARS = MIN_SEGMENT_BYTES  # a text shorter than this cannot contain a segment
# Lines longer than this are not items (they are documents); skipping them bounds the hashing work.
MAX_LINE_BYTES = 4000
MAX_LABEL_BYTES = 60
# Upper bound on segments looked up per prompt: the request path must stay cheap on prompts of many short lines.
MAX_QUERY_SEGMENTS = 48
_PERSON = b"dg-bench"
_SENTENCE = 1
_LABEL = 2


def _segment_map() -> bytes:
    table = bytearray(b" " * 256)
    for c in range(256):
        if 48 <= c <= 57 or 97 <= c <= 122 or c >= 0x80:
            table[c] = c
    table[ord("\n")] = ord("\n")
    for c in b".?!":
        table[c] = _SENTENCE
    table[ord(":")] = _LABEL
    return bytes(table)


_SEGMENT_MAP = _segment_map()
# Typographic punctuation that people and harnesses swap for ASCII: folded before the byte map.
_TYPOGRAPHIC = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u00a0": " "}


def _sentence(piece: bytes) -> tuple[bytes, bytes | None]:
    """A piece with spaces squeezed and its leading label dropped, and (if a label was dropped) the piece whole.

    Both forms are segments: "Question: Sally's scores: 50, 80..." drops "question" in the harness, while the
    bare item "Sally's scores: 50, 80..." would lose "sally's scores" to the same rule.
    """
    colon = piece.find(b"\x02")
    if colon < 0:
        return b" ".join(piece.split()), None
    whole = b" ".join(piece.replace(b"\x02", b" ").split())
    if colon > MAX_LABEL_BYTES:
        return whole, None
    return b" ".join(piece[colon + 1 :].replace(b"\x02", b" ").split()), whole


def segments(text: str) -> Iterator[bytes]:
    """Distinct normalised segments of ``text`` long enough to identify a benchmark item (see the docstring)."""
    lower = text.lower()
    for typographic, plain in _TYPOGRAPHIC.items():
        if typographic in lower:
            lower = lower.replace(typographic, plain)
    data = lower.encode("utf-8", "surrogatepass").translate(_SEGMENT_MAP)
    seen: set[bytes] = set()
    paragraph: list[bytes] = []
    for line in data.split(b"\n"):
        if len(line) > MAX_LINE_BYTES:
            line = b""  # a document-sized line, not an item: also ends the paragraph
        whole, unlabelled = _sentence(line.replace(b"\x01", b" ") if b"\x01" in line else line)
        if not whole:
            if len(paragraph) > 1:
                yield from _new(b" ".join(paragraph), None, seen=seen)
            paragraph = []
            continue
        if len(whole) >= MIN_SEGMENT_BYTES and b"\x01" in line:
            # Sentences shorter than a segment are skipped before any work; the line covers them.
            for piece in line.split(b"\x01"):
                if len(piece) >= MIN_SEGMENT_BYTES:
                    yield from _new(*_sentence(piece), seen=seen)
        yield from _new(whole, unlabelled, seen=seen)
        paragraph.append(whole)
    if len(paragraph) > 1:
        yield from _new(b" ".join(paragraph), None, seen=seen)


def _new(segment: bytes, variant: bytes | None, seen: set[bytes]) -> Iterator[bytes]:
    for candidate in (segment, variant):
        if candidate is not None and len(candidate) >= MIN_SEGMENT_BYTES and candidate not in seen:
            seen.add(candidate)
            yield candidate


def segment_key(normalised: bytes) -> tuple[int, int]:
    """(CRC-32, BLAKE2b-64) of a normalised segment: the quick filter and the confirming hash."""
    return zlib.crc32(normalised), int.from_bytes(blake2b(normalised, digest_size=8, person=_PERSON).digest(), "little")


def segment_keys(text: str) -> set[tuple[int, int]]:
    """Keys of all segments of ``text`` (what the index builder stores for one benchmark item)."""
    return {segment_key(s) for s in segments(text)}


@dataclass(frozen=True, slots=True)
class BenchmarkIndex:
    """CRC-32 -> ((BLAKE2b-64, benchmark name), ...)."""

    table: Mapping[int, tuple[tuple[int, str], ...]]

    def names(self) -> set[str]:
        """The benchmarks in the index."""
        return {name for entries in self.table.values() for _, name in entries}

    def match(self, text: str) -> str | None:
        """The benchmark one of whose test items ``text`` contains, else None."""
        if not self.table:
            return None
        for i, segment in enumerate(segments(text)):
            if i >= MAX_QUERY_SEGMENTS:
                break
            entries = self.table.get(zlib.crc32(segment))
            if entries is not None:
                digest = segment_key(segment)[1]
                for blake, name in entries:
                    if blake == digest:
                        return name
        return None


def encode_index(entries: Mapping[str, Iterable[tuple[int, int]]]) -> bytes:
    """The binary index of ``{benchmark: {(crc32, blake2b64), ...}}`` (see the module docstring for the format)."""
    names = list(entries)
    keys = [sorted(set(entries[n]), key=lambda k: k[1]) for n in names]
    out = [MAGIC, struct.pack("<H", len(names))]
    for name, items in zip(names, keys, strict=True):
        raw = name.encode("utf-8")
        out += [struct.pack("<B", len(raw)), raw, struct.pack("<I", len(items))]
    for items in keys:
        out.append(np.array([b for _, b in items], dtype="<u8").tobytes())
        out.append(np.array([c for c, _ in items], dtype="<u4").tobytes())
    return b"".join(out)


def decode_index(data: bytes) -> BenchmarkIndex:
    """Parse an index written by ``encode_index``; the first benchmark listed wins an entry present twice."""
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError("not a distillguard benchmark index (or an older format)")
    pos = len(MAGIC)
    (count,) = struct.unpack_from("<H", data, pos)
    pos += 2
    header: list[tuple[str, int]] = []
    for _ in range(count):
        (length,) = struct.unpack_from("<B", data, pos)
        pos += 1
        name = data[pos : pos + length].decode("utf-8")
        pos += length
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        header.append((name, n))
    table: dict[int, list[tuple[int, str]]] = {}
    seen: set[int] = set()
    for name, n in header:
        blakes = np.frombuffer(data, dtype="<u8", count=n, offset=pos).tolist()
        pos += 8 * n
        crcs = np.frombuffer(data, dtype="<u4", count=n, offset=pos).tolist()
        pos += 4 * n
        for crc, blake in zip(crcs, blakes, strict=True):
            if blake not in seen:
                seen.add(blake)
                table.setdefault(crc, []).append((blake, name))
    if pos != len(data):
        raise ValueError("benchmark index has trailing or missing bytes")
    return BenchmarkIndex({crc: tuple(entries) for crc, entries in table.items()})


def load_index() -> BenchmarkIndex:
    """The shipped index; an empty one (benchmark always None, with a warning) if it is missing or unreadable.

    Not raising keeps the package importable, which the index builder itself needs to rewrite a stale index.
    """
    path = resources.files("distillguard.detect.signals").joinpath("data", "benchmarks.bin")
    try:
        return decode_index(path.read_bytes())
    except (OSError, ValueError, struct.error) as e:
        log.warning(
            "benchmark index unavailable (%s): the benchmark signal will be None; run scripts/build_benchmark_index.py",
            e,
        )
        return BenchmarkIndex({})
