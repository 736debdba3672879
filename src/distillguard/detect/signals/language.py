"""Language of a prompt: Unicode script first, then stopwords for the Latin-script languages.

Why a heuristic and not a model: the request path allows a few microseconds for this, and the signal only feeds
per-account breadth measures (how many languages an account uses, whether it sweeps languages), where the
difference between a 97% and a 99.5% identifier does not matter. Library identifiers (langid.py, lingua, fastText)
cost tens of microseconds to milliseconds per call, or need a model download, and none is needed for this.

The result is an ISO 639-1 code, or ``und`` when there is too little evidence (code only, a single unknown word).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence, Set

# Script of a token, from the code point of its first character: block boundaries and the script each one starts.
# Latin covers Basic Latin to Latin Extended-B and Latin Extended Additional (Vietnamese).
_BLOCKS: tuple[tuple[int, str], ...] = (
    (0x0000, "latin"),
    (0x0250, "other"),
    (0x0370, "greek"),
    (0x0400, "cyrillic"),
    (0x0530, "armenian"),
    (0x0590, "hebrew"),
    (0x0600, "arabic"),
    (0x0700, "other"),
    (0x0750, "arabic"),
    (0x0780, "other"),
    (0x0900, "devanagari"),
    (0x0980, "bengali"),
    (0x0A00, "other"),
    (0x0B80, "tamil"),
    (0x0C00, "other"),
    (0x0E00, "thai"),
    (0x0E80, "other"),
    (0x10A0, "georgian"),
    (0x1100, "hangul"),
    (0x1200, "other"),
    (0x1E00, "latin"),
    (0x1F00, "greek"),
    (0x2000, "other"),
    (0x3040, "kana"),
    (0x3100, "other"),
    (0x3400, "han"),
    (0x4DC0, "other"),
    (0x4E00, "han"),
    (0xA000, "other"),
    (0xAC00, "hangul"),
    (0xD7B0, "other"),
    (0xF900, "han"),
    (0xFB00, "other"),
)
_STARTS = tuple(start for start, _ in _BLOCKS)
_SCRIPTS = tuple(script for _, script in _BLOCKS)

# Scripts that name one language (or one language dominates the script's use in API traffic).
_SCRIPT_LANGUAGE = {
    "greek": "el",
    "armenian": "hy",
    "hebrew": "he",
    "devanagari": "hi",
    "bengali": "bn",
    "tamil": "ta",
    "thai": "th",
    "georgian": "ka",
    "hangul": "ko",
    "han": "zh",
    "kana": "ja",
}

# Short, frequent, distinctive words per Latin-script language. Shared words (``de``, ``a``, ``in``) count for
# every language that has them; the distinctive ones decide.
_STOPWORDS: dict[str, str] = {
    "en": "the and is are was were of to in on for with that this it you your what how why which who when where "
    "can could would should will do does did not be been have has had an as at by from or but if my me i we they "
    "there their them please write explain give tell make help about into than then so some list create build "
    "generate provide describe define state all against under new best steps step using based between each "
    "other like also just should need want know get does any more most why summarize summarise translate "
    "rewrite fix convert compare find show",
    "es": "el la los las del que y en un una es por para con no se su al lo como más pero sus le ya este sí porque "
    "esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante todos uno les ni otros "
    "ese eso esto qué cómo cuál puedes explica escribe dame hola gracias favor",
    "pt": "o os as do da dos das e que em um uma é para com não no na nos nas por mais se como mas ao ele ela seu sua "
    "ou quando muito já também só pelo pela até isso entre depois sem mesmo eu você está são foi há isto esse essa "
    "qual quais escreva explique olá obrigado me fale",
    "fr": "le la les de des du et un une est en que qui dans pour pas sur au aux avec ce ces il elle je vous nous tu "
    "ne se plus par mais ou son sa ses comment pourquoi quel quelle être avoir fait cette très bonjour merci écris "
    "explique peux peut",
    "de": "der die das und ist nicht ein eine zu den von mit sich des auf für im dem ich du sie es wir ihr auch wie "
    "was warum aber oder wenn noch nach bei kann können sind wird werden einen einem einer bitte schreibe erkläre "
    "über mir mich",
    "it": "il lo la i gli le di del della che e è un una in per con non si da sono come ma anche questo questa perché "
    "cosa qual più nel nella al alla dei delle ciao scrivi spiega puoi",
    "nl": "de het een en van ik te dat die in is niet op met voor zijn er maar om ook als dan aan wat hoe kun je jij "
    "waarom schrijf alsjeblieft hoe kan",
    "sv": "och att det som en på är av för med till den har de inte om ett jag du vad hur varför kan skriv förklara",
    "pl": "i w nie na się z do to że jest jak co ale o czy dla po tak są proszę napisz dlaczego który która które "
    "jaki jakie mnie",
    "tr": "ve bir bu için ile da de mi ne çok daha gibi olarak ama nas\u0131l neden şu ben sen var yok lütfen "
    "nedir bana",
    "vi": "và của là có không những các cho một được trong này với người tôi bạn như khi thì để làm gì sao",
    "id": "yang dan di ini itu untuk dengan tidak dari dalam akan ada saya anda apa bagaimana mengapa bisa adalah "
    "juga tolong buatkan",
}
_LANGUAGES = tuple(_STOPWORDS)
# word -> indexes of the languages that have it: one set intersection with the tokens finds every hit.
_STOPWORD_LANGUAGES: dict[str, tuple[int, ...]] = {}
for _index, _words in enumerate(_STOPWORDS.values()):
    for _word in _words.split():
        _STOPWORD_LANGUAGES[_word] = (*_STOPWORD_LANGUAGES.get(_word, ()), _index)

# Letters that single out one language among those sharing a script.
_UKRAINIAN = frozenset("іїєґ")
_PERSIAN = frozenset("پچژگ")

# How many tokens to look at when counting scripts: enough to outvote an embedded name or code identifier.
_SCRIPT_SAMPLE = 200


def script_of(token: str) -> str:
    """The script of a token's first character (``latin``, ``han``, ``cyrillic``...)."""
    return _SCRIPTS[bisect_right(_STARTS, ord(token[0])) - 1]


VOCABULARY = frozenset(_STOPWORD_LANGUAGES)


def stopword_languages(word: str) -> tuple[int, ...]:
    """Indexes of the languages whose stopword list has ``word`` (for a caller's own word index)."""
    return _STOPWORD_LANGUAGES.get(word, ())


def _latin_language(token_set: Set[str], hits: Sequence[int] | None) -> str:
    counts = [0] * len(_LANGUAGES)
    if hits is None:
        hits = [i for word in token_set for i in _STOPWORD_LANGUAGES.get(word, ())]
    for index in hits:
        counts[index] += 1
    best = max(range(len(counts)), key=counts.__getitem__)  # the first of equal counts (English first)
    return _LANGUAGES[best] if counts[best] else "und"


def detect_language(
    text: str, tokens: Sequence[str], token_set: Set[str], is_ascii: bool, stopword_hits: Sequence[int] | None = None
) -> str:
    """ISO 639-1 code of ``text``, or ``und``.

    ``tokens`` are its lower-cased tokens; ``token_set`` their set, or only those in ``VOCABULARY``;
    ``stopword_hits``, if the caller has looked them up, the ``stopword_languages`` of each word of token_set.
    """
    if not tokens:
        return "und"
    if is_ascii:
        return _latin_language(token_set, stopword_hits)
    counts: dict[str, int] = {}
    for token in tokens[:_SCRIPT_SAMPLE]:
        if token.isdigit():
            continue
        script = script_of(token)
        counts[script] = counts.get(script, 0) + 1
    if not counts:
        return "und"
    script = max(counts, key=counts.__getitem__)
    # Japanese mixes kanji (han) with kana; Chinese has no kana. A modest kana share means Japanese.
    if script in ("han", "kana"):
        kana = counts.get("kana", 0)
        return "ja" if kana * 5 >= kana + counts.get("han", 0) else "zh"
    if script == "latin":
        return _latin_language(token_set, stopword_hits)
    if script == "cyrillic":
        return "uk" if not _UKRAINIAN.isdisjoint(text) else "ru"
    if script == "arabic":
        return "fa" if not _PERSIAN.isdisjoint(text) else "ar"
    return _SCRIPT_LANGUAGE.get(script, "und")
