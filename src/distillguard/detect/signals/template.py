"""Prompt skeletons: the text with its variable parts masked, hashed into a template id.

Scripted traffic fills one template with many values ("Think step by step: {question}", "Question: {q}\\nAnswer:",
"Translate into French:\\n\\n{text}"). Masking what typically varies makes such requests share a template id, while
unrelated prompts keep different skeletons. What is masked (each span becomes one mask symbol):

- code blocks and inline code, URLs, e-mail addresses, quoted strings, numbers (dates, times, decimals too);
- capitalised runs in mid-sentence (names, places, products): "capital of France", "explain Kubernetes";
- the value of a ``label: value`` line when the label is short ("Question: ...", "Think out loud: ...");
- the lines after a header line that ends with a colon ("Summarize the following article:"), up to the next
  header: they are the material the header introduces;
- the body of any other long line (pasted paragraphs, long questions): only its first few words are kept.

The skeleton is lower-cased and whitespace-normalised, blank lines dropped, runs of masks collapsed, so that
formatting noise does not split a template. A template is a property of one request; which templates an account
repeats is for the account-level features to count.
"""

from __future__ import annotations

import re

from distillguard.detect.signals.text import hash_hex16

MASK = "\x00"
# A line longer than this (after masking) is content, not template: keep its first words only.
LONG_LINE_CHARS = 160
LONG_LINE_KEEP_WORDS = 6
# Bound the per-line work on prompts with thousands of lines (code, logs): the head and tail lines decide.
MAX_LINES = 80
TAIL_LINES = 20

_UPPER = "A-ZÀ-ÖØ-ÞА-ЯЁΑ-Ω"
# One regex per kind of span, applied in this order (code before quotes before numbers...). Each starts with a
# literal or a character class, which the regex engine scans for quickly; an alternation of them all would be
# tried at every position and costs several times more. Kinds that need a rare character run only if it is there.
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]{1,200}`", re.DOTALL)
_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+")
# Starts only at the beginning of a run: without the lookbehind a long unbroken run would be rescanned from each
# of its characters (quadratic on base64 blobs and the like).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_QUOTES = (
    ('"', re.compile(r'"[^"\n]{1,300}"')),
    # Typographic quotes, guillemets, CJK corner brackets (escaped: they look like other characters).
    ("\u201c", re.compile("\u201c[^\u201d\n]{1,300}\u201d")),
    ("\u00ab", re.compile("\u00ab[^\u00bb\n]{1,300}\u00bb")),
    ("\u300c", re.compile("\u300c[^\u300d\n]{1,300}\u300d")),
    ("\u300e", re.compile("\u300e[^\u300f\n]{1,300}\u300f")),
    ("\u2018", re.compile("\u2018[^\u2019\n]{1,300}\u2019")),
    # A single quote opens a string only after a non-word character, so "let's ... don't" stays intact.
    ("'", re.compile(r"'(?<!\w')[^'\n]{1,200}'(?!\w)")),
)
_NUMBER = re.compile(r"[0-9]+(?:[.,:/-][0-9]+)*")
# The lookbehind sits after the first capital so that the regex starts with a character class. It asks for a word
# (or , ;) and a space before the capital: a capital that starts a sentence or a line is not masked.
_PROPER = re.compile(f"[{_UPPER}](?<=[\\w,;] [{_UPPER}])[\\w'\u2019-]*(?: [{_UPPER}][\\w'\u2019-]*)*")

# Full-width colons (\uff1a) end labels in Chinese and Japanese text.
# Words are bounded so that a long unbroken line cannot make the engine backtrack through every way to cut it.
_LABEL = re.compile(r"^((?:[^\s:\uff1a]{1,40} ){0,5}[^\s:\uff1a]{1,40}) ?[:\uff1a] ?(?=\S)")
_MASK_RUNS = re.compile(f"{MASK}(?:[^\\w{MASK}\\n]*{MASK})+")


def mask(text: str) -> str:
    """``text`` with code, URLs, e-mails, quoted strings, numbers and mid-sentence capitalised runs masked."""
    if "`" in text:
        text = _CODE.sub(MASK, text)
    if "://" in text or "www." in text:
        text = _URL.sub(MASK, text)
    if "@" in text:
        text = _EMAIL.sub(MASK, text)
    for quote, regex in _QUOTES:
        if quote in text:
            text = regex.sub(MASK, text)
    return _PROPER.sub(MASK, _NUMBER.sub(MASK, text))


def skeleton(text: str) -> str:
    """The normalised skeleton of a prompt (see the module docstring)."""
    lines = mask(text).splitlines()
    if len(lines) > MAX_LINES:
        lines = lines[: MAX_LINES - TAIL_LINES] + lines[-TAIL_LINES:]
    out: list[str] = []
    after_header = False
    for line in lines:
        words = line.split()
        if not words:
            continue
        squeezed = " ".join(words)
        if squeezed[-1] in ":\uff1a":
            # A header ("Summarize the following article:", "Here is my code:") introduces content: the lines
            # that follow, up to the next header, are the filler.
            after_header = True
        elif after_header:
            squeezed = MASK
        elif (":" in squeezed or "\uff1a" in squeezed) and (label := _LABEL.match(squeezed)) is not None:
            squeezed = label.group(1) + ":" + MASK
        elif len(squeezed) > LONG_LINE_CHARS:
            squeezed = " ".join(words[:LONG_LINE_KEEP_WORDS]) + " " + MASK
        if squeezed == MASK and out and out[-1] == MASK:
            continue  # one mask for a whole run of filler lines: their number is filler too
        out.append(squeezed)
    return _MASK_RUNS.sub(MASK, "\n".join(out).lower())


def template_id(text: str) -> str:
    """16 hex characters identifying the skeleton of ``text``."""
    return hash_hex16(skeleton(text), b"dg-template")
