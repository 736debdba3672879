"""The meaning-preserving choices the text watermark makes: classes of interchangeable words and phrases.

Each class lists variants that mean the same in the contexts the class allows. The watermark picks one variant per
(class, previous word) with a keyed function, so which variant it favours changes with the context and word
frequencies over a corpus do not give the key away (the idea of CATER, He et al. 2022). The detector finds every
variant of every class in a text and checks how often the variant present is the keyed one.

Rules a class can carry, so that a substitution never changes the meaning or breaks the grammar:

- ``opener``: only at the start of a sentence and followed by a comma ("However," / "Nevertheless,");
- ``before``: only after one of these words ("the whole" / "the entire"); ``not_before``: never after these
  ("the need to" is a noun);
- ``then_word``: only when a lowercase word follows ("it is done" / "it's done", never "as it is."), and not "not"
  ("that is not" is the site "is not" / "isn't" after "that", so that marking it either way reads back the same);
- ``then_number``: only before a number ("about 5" / "approximately 5");
- ``participle``: True, only before a past participle ("you have seen" / "you've seen", never "you've a car");
  False, never before one ("it's been" is "it has been": "it is been" would break the sentence).

Level 1 classes are used at every strength; level 2 classes (wordier or more noticeable) only at the strongest.

Besides words, five *formatting* channels carry the mark: the apostrophe (straight or curly), the space after a
sentence end (one or two: Markdown and HTML collapse both), a line that ends a sentence (no trailing space or one:
invisible, and also collapsed), the last line of a paragraph (no trailing space, one or two: a hard break does
nothing at the end of a paragraph) and the blank line between two paragraphs (no space, one or two: a
whitespace-only line is blank in Markdown, HTML and plain text alike). They are the densest sites in prose, and
also the ones a normalisation of the text erases, so the detector scores a formatting channel only in a text where
two of its variants occur.

Class ids are hashed into the keyed choice: a class keeps its id and its variants in order for ever, new classes are
appended (texts marked before a class existed still read back with their old choices).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WordClass:
    cid: int
    variants: tuple[tuple[str, ...], ...]  # each a lowercase phrase, split into words
    level: int = 1
    opener: bool = False
    before: frozenset[str] | None = None
    not_before: frozenset[str] = frozenset()
    then_word: bool = False
    then_number: bool = False
    participle: bool | None = None
    formatting: bool = False  # a formatting channel (apostrophe, spacing), not a word


# Past participles that follow "has" / "have": after "it's", "that's", ... they show the contraction stands for "has"
# ("it's been"), and after "I have", "you have", ... they show "have" is an auxiliary ("you've seen", never "you've a
# car"). Besides these, any word ending in "ed" but the few below.
PARTICIPLES = frozenset(
    {"been", "got", "gotten", "had", "done", "seen", "made", "taken", "given", "shown", "known", "written", "become",
     "come", "gone", "begun", "broken", "chosen", "driven", "eaten", "fallen", "forgotten", "hidden", "proven",
     "risen", "spoken", "stolen", "grown", "thrown", "drawn", "worn", "torn", "led", "left", "lost", "found", "kept",
     "held", "brought", "bought", "caught", "taught", "thought", "felt", "built", "sent", "spent", "meant", "put",
     "set", "run", "won", "said", "told", "sold", "paid", "read", "heard", "met", "understood", "stood", "struck",
     "hit", "cut", "let", "shut", "quit", "spread", "learnt", "burnt", "dealt", "slept", "sat", "fought", "sought",
     "lent", "bent", "bound", "hung", "stuck", "dug", "fed", "fled", "shot", "lit", "laid", "forgiven",
     "mistaken", "overlooked", "undergone", "withdrawn"}
)  # fmt: skip
_NOT_PARTICIPLES = frozenset(
    {"need", "feed", "seed", "speed", "bed", "red", "shed", "breed", "bleed", "weed", "deed", "greed", "hundred",
     "sacred", "naked", "wicked", "indeed", "kindred", "embed", "shred", "sled", "wed"}
)  # fmt: skip


def participle(word: str) -> bool:
    """Whether a lowercase word reads as a past participle (``PARTICIPLES``, or a word ending in "ed")."""
    return word in PARTICIPLES or (word.endswith("ed") and len(word) > 3 and word not in _NOT_PARTICIPLES)


_DETERMINERS = frozenset({"the", "this", "that", "your", "my", "our", "their", "his", "her", "its"})

# (variants, options). The order of the variants never changes: their index is what the key selects.
_SPECS: list[tuple[tuple[str, ...], dict[str, object]]] = [
    # contractions of "not": equivalent in every register the models answer in
    (("do not", "don't"), {}),
    (("does not", "doesn't"), {}),
    (("did not", "didn't"), {}),
    (("is not", "isn't"), {}),
    (("are not", "aren't"), {}),
    (("was not", "wasn't"), {}),
    (("were not", "weren't"), {}),
    (("cannot", "can't"), {}),
    (("could not", "couldn't"), {}),
    (("would not", "wouldn't"), {}),
    (("should not", "shouldn't"), {}),
    (("will not", "won't"), {}),
    (("have not", "haven't"), {}),
    (("has not", "hasn't"), {}),
    (("had not", "hadn't"), {}),
    # subject + auxiliary, only inside a clause (a word must follow)
    (("it is", "it's"), {"then_word": True, "participle": False}),
    (("that is", "that's"), {"then_word": True, "participle": False}),
    (("there is", "there's"), {"then_word": True, "participle": False}),
    (("you are", "you're"), {"then_word": True}),
    (("we are", "we're"), {"then_word": True}),
    (("they are", "they're"), {"then_word": True}),
    (("you will", "you'll"), {"then_word": True}),
    (("we will", "we'll"), {"then_word": True}),
    (("it will", "it'll"), {"level": 2, "then_word": True}),
    # sentence openers (followed by a comma)
    (("however", "nevertheless"), {"opener": True}),
    (("additionally", "moreover", "furthermore", "in addition"), {"opener": True}),
    (("for example", "for instance"), {"opener": True}),
    (("therefore", "thus", "consequently", "as a result"), {"opener": True}),
    (("overall", "in general"), {"opener": True}),
    (("in summary", "in conclusion", "to summarize", "to sum up"), {"opener": True}),
    (("first", "firstly"), {"opener": True}),
    (("second", "secondly"), {"opener": True}),
    (("third", "thirdly"), {"opener": True}),
    (("finally", "lastly"), {"opener": True}),
    (("of course", "naturally"), {"opener": True, "level": 2}),
    (("in other words", "put differently"), {"opener": True}),
    (("similarly", "likewise"), {"opener": True}),
    (("instead", "rather"), {"opener": True, "level": 2}),
    (("meanwhile", "in the meantime"), {"opener": True}),
    (("in fact", "indeed"), {"opener": True}),
    (("unfortunately", "regrettably"), {"opener": True, "level": 2}),
    (("generally", "typically", "usually"), {"opener": True}),
    # adverbs and adjectives that are synonyms wherever they stand
    (("often", "frequently"), {}),
    (("perhaps", "maybe"), {}),
    (("usually", "typically"), {}),
    (("quickly", "rapidly"), {}),
    (("several", "a number of"), {}),
    (("a lot of", "lots of"), {}),
    (("approximately", "roughly"), {"then_number": True}),
    (("whole", "entire"), {"before": _DETERMINERS, "level": 2}),
    (("large", "big"), {"level": 2}),
    (("huge", "enormous"), {}),
    (("essential", "crucial", "vital"), {"level": 2}),
    (("mostly", "largely", "mainly"), {}),
    (("primarily", "chiefly"), {"level": 2}),
    (("easily", "readily"), {"level": 2}),
    (("completely", "entirely", "fully"), {}),
    (("especially", "particularly"), {}),
    (("slightly", "somewhat"), {"level": 2}),
    (("nearly", "almost"), {}),
    (("certainly", "definitely"), {}),
    (("currently", "presently"), {"level": 2}),
    (("such as", "including"), {"level": 2}),  # "the repo, including its history" is not an example
    (("in order to", "so as to"), {"level": 2}),
    (("because of", "due to"), {"level": 2}),
    (("whether or not", "whether"), {"level": 2}),
    (("need to", "have to"), {"not_before": _DETERMINERS | {"a", "an", "no", "any"}}),
    (("choose", "select"), {}),
    (("each other", "one another"), {}),
    (("kind of", "sort of"), {}),
    (("anyone", "anybody"), {}),
    (("someone", "somebody"), {}),
    (("everyone", "everybody"), {}),
    (("no one", "nobody"), {}),
    (("although", "even though", "though"), {"then_word": True}),
    (("a variety of", "a range of"), {}),
    (("allows you to", "lets you", "enables you to"), {}),
    (("allows us to", "lets us", "enables us to"), {}),
    (("keep in mind", "bear in mind"), {}),
    (("make sure", "be sure"), {}),
    (("right away", "immediately"), {}),
    (("these days", "nowadays"), {}),
    (("in the end", "ultimately"), {"opener": True}),
    (("on the other hand", "conversely"), {"opener": True}),
    (("for the most part", "mostly"), {"opener": True}),
    (("due to the fact that", "because"), {"level": 2}),
    (("spelled", "spelt"), {"level": 2}),
    (("percent", "per cent"), {"level": 2}),
    # spelling variants
    (("toward", "towards"), {}),
    (("among", "amongst"), {}),
    (("afterward", "afterwards"), {}),
    (("okay", "ok"), {"level": 2}),
]

# Added with the spacing channels (class ids from 95 on, after the apostrophe and the two spacing channels).
_SPECS_2: list[tuple[tuple[str, ...], dict[str, object]]] = [
    (("here is", "here's"), {"then_word": True, "participle": False}),
    (("what is", "what's"), {"then_word": True, "participle": False}),
    (("they will", "they'll"), {"then_word": True}),
    (("that will", "that'll"), {"level": 2, "then_word": True}),
    (("in spite of", "despite"), {}),
    (("backward", "backwards"), {}),
    (("amid", "amidst"), {}),
    (("first of all", "to begin with"), {"opener": True}),
    (("above all", "most importantly"), {"opener": True}),
    (("in the past", "previously"), {"opener": True}),
    (("in this way", "this way"), {"opener": True}),
    (("to do so", "to do this"), {"opener": True}),
    (("specifically", "in particular"), {"opener": True}),
    (("in short", "in brief"), {"opener": True}),
    (("as mentioned", "as noted"), {"opener": True}),
    (("regardless of", "irrespective of"), {"level": 2}),
    (("besides", "in addition to"), {"level": 2, "then_word": True}),
]

# Added with the blank-line channel (class ids from 113 on, after it): contractions and phrases that answers use.
_SPECS_3: list[tuple[tuple[str, ...], dict[str, object]]] = [
    (("i am", "i'm"), {"then_word": True}),
    (("i will", "i'll"), {"then_word": True}),
    (("i have", "i've"), {"participle": True}),
    (("you have", "you've"), {"participle": True}),
    (("we have", "we've"), {"participle": True}),
    (("they have", "they've"), {"participle": True}),
    (("he is", "he's"), {"then_word": True, "participle": False}),
    (("she is", "she's"), {"then_word": True, "participle": False}),
    (("who is", "who's"), {"then_word": True, "participle": False}),
    (("he will", "he'll"), {"then_word": True}),
    (("she will", "she'll"), {"then_word": True}),
    (("must not", "mustn't"), {}),
    (("each time", "every time"), {}),
    (("and so on", "and so forth"), {}),
    (("worth noting", "worth mentioning"), {}),
    (("that said", "having said that"), {"opener": True}),
    (("in any case", "in any event"), {"opener": True}),
    (("by the way", "incidentally"), {"opener": True}),
    (("even so", "still"), {"opener": True}),
    (("to be honest", "honestly"), {"opener": True}),
    (("exactly", "precisely"), {}),
]

# A formatting variant rather than a word: the apostrophe of a contraction or possessive, straight or curly.
CURLY = "\u2019"
APOSTROPHES = ("'", CURLY)


def _build(specs: list[tuple[tuple[str, ...], dict[str, object]]], first_cid: int) -> tuple[WordClass, ...]:
    out = []
    for cid, (variants, options) in enumerate(specs, first_cid):
        out.append(
            WordClass(
                cid=cid,
                variants=tuple(tuple(v.split()) for v in variants),
                level=int(options.get("level", 1)),  # type: ignore[call-overload]
                opener=bool(options.get("opener", False)),
                before=options.get("before"),  # type: ignore[arg-type]
                not_before=options.get("not_before", frozenset()),  # type: ignore[arg-type]
                then_word=bool(options.get("then_word", False)),
                then_number=bool(options.get("then_number", False)),
                participle=options.get("participle"),  # type: ignore[arg-type]
            )
        )
    return tuple(out)


# The formatting channels. Their ids follow the first lexicon's 92 classes (the apostrophe's id predates the others).
APOSTROPHE = WordClass(cid=92, variants=(("'",), (CURLY,)), formatting=True)
SENTENCE_SPACE = WordClass(cid=93, variants=((" ",), ("  ",)), formatting=True)  # between sentences on a line
LINE_END = WordClass(cid=94, variants=(("",), (" ",)), formatting=True)  # before the newline after a sentence
# The blank line between two paragraphs: empty, one space or two (a whitespace-only line is blank however many).
BLANK_LINE = WordClass(cid=112, variants=(("",), (" ",), ("  ",)), formatting=True)
# The end of a paragraph's last line after a sentence, before a blank line: no trailing space, one or two (two are a
# hard line break only inside a paragraph; at its end Markdown ignores them).
PARAGRAPH_END = WordClass(cid=134, variants=(("",), (" ",), ("  ",)), formatting=True)
FORMATTING: tuple[WordClass, ...] = (APOSTROPHE, SENTENCE_SPACE, LINE_END, BLANK_LINE, PARAGRAPH_END)

CLASSES: tuple[WordClass, ...] = _build(_SPECS, 0) + _build(_SPECS_2, 95) + _build(_SPECS_3, 113)
