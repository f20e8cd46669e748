"""Whether a question asks for a figure or a person, and whether a sentence can give one.

"How many nurses does the NHS employ?" can only be answered by a sentence with a number in
it. A near-domain question that the archive cannot answer often lands on a passage that shares
its words ("nurses", "NHS") but not its answer, so the figure is looked for before a short
answer is given (`Searcher.search`), and the highlighted sentence prefers one that gives it
(`index/highlight.best_sentence`). Only the wh-phrase is read: no model, no parsing.

"Who argues against means-testing?" is answered by a sentence that names someone, or by a
passage whose speaker is known (the lead's combination in `Searcher.search`): "There is no
moral case for social care means-testing" answers it only with "Simon Duffy" beside it.

"When" questions are left alone: they are answered as often by "at nine", "after the war" or
"before the pandemic" as by a date."""

from __future__ import annotations

import re
from collections.abc import Callable

from index.lexical import STOPWORDS

# "How much ..." also asks for a degree ("How much does he trust councils?"); it counts,
# because the check only ever withholds the short answer, never passages.
_QUANTITY_QUESTION = re.compile(
    r"\bhow (many|much|long|often|old|far)\b"
    r"|\bwhat (percentage|proportion|share|fraction|number|amount|sum|figure)\b"
    r"|\bwhat (is|was|were|are) the (total|number|cost|price|budget|size|average|median)\b",
    re.IGNORECASE,
)
# Not "one" or "once": "which one", "no one", "once the plan..." say no amount.
_NUMBER_WORDS = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundreds?|thousands?|millions?|billions?|trillions?|dozens?|half|halved|double[sd]?|"
    "doubling|tripled?|an? third|an? quarter|twice|per ?cent|percent"
)
_QUANTITY = re.compile(rf"\d|[%£$€]|\b({_NUMBER_WORDS})\b", re.IGNORECASE)
# A year ("launched in 2019") dates a thing, it does not count one.
_YEAR = re.compile(r"\b(1[5-9]|20)\d\ds?\b")


def asks_for_quantity(question: str) -> bool:
    """Whether the question's wh-phrase asks for a figure ("how many", "what percentage")."""
    return _QUANTITY_QUESTION.search(question) is not None


def holds_quantity(sentence: str) -> bool:
    """Whether the sentence gives a figure: digits other than a year, a currency or per cent
    sign, or a number word."""
    return _QUANTITY.search(_YEAR.sub(" ", sentence)) is not None


def answer_filter(question: str) -> Callable[[str], bool] | None:
    """A test for sentences that can answer `question`, or None when any sentence can."""
    return holds_quantity if asks_for_quantity(question) else None


# People a question may ask for by kind ("Which GP leader...", "What politician...").
_PERSON_NOUNS = (
    "person|people|man|men|woman|women|writer|author|reader|commenter|commentator|columnist|"
    "journalist|reporter|editor|politician|minister|secretary|mp|mps|councillor|mayor|leader|"
    "chair|chairman|chairwoman|chief|director|executive|official|spokes(?:man|woman|person)|"
    "expert|academic|economist|doctor|gp|nurse|campaigner|activist|critic|speaker|contributor|"
    "blogger|founder|member|resident|patient|professor|researcher|scientist|analyst"
)
_AUXILIARIES = "do|does|did|is|are|was|were|has|have|had|can|could|will|would|should"
# "Who ...", "Whom ...", "Whose ...", also after a leading "and"/"so"/"tell me"; "which [one
# or two words] writer ..."; not "what number of people" or "what do people think", so "of"
# and a verb end the noun phrase.
_PERSON_QUESTION = re.compile(
    r"^\W*(?:(?:and|but|so|then|ok|okay|now)\W+)?"
    r"(?:(?:can you |could you |please )?(?:tell me|do you know|say|name)\W+)?"
    r"(?:who(?:m|se|['’]s)?\b|(?:which|what)\s+"
    rf"(?:(?!(?:of|{_AUXILIARIES})\b)[\w'’-]+\s+){{0,2}}?(?:{_PERSON_NOUNS})s?\b)",
    re.IGNORECASE,
)
# Titles that come before a name: "Mr Mayo", "Dr. Roe", "Health Secretary Andrew Lansley".
_HONORIFIC = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Lord|Lady|Baroness|Baron|Cllr|Councillor|"
    r"Rev|Revd|Father|Sister|Judge|Justice|Captain|Capt|President|Senator|Governor|Mayor|"
    r"Minister|Secretary|Chancellor)\.?\s+[A-Z][a-z]"
)
# Capitalised words (O'Brien, Lloyd-Webber); all-capitals ones ("NHS", "CC") name no one.
_CAPITALISED = r"[A-Z](?:['’][A-Z])?[a-z][\w'’-]*"
_CAPITALISED_RUN = re.compile(rf"{_CAPITALISED}(?:[ \t]+{_CAPITALISED})*")
# The head words of organisations, places and documents: "New Local Government Network",
# "Long Term Plan" and "King's Fund" end with one, so they are not people's names.
_NOT_NAME_WORDS = frozenset(
    """government party labour conservative conservatives tory tories democrats republicans
    ministry department council office committee commission service services trust fund network
    foundation institute university college school hospital authority authorities agency
    association society union board group company bank plan act bill report review strategy
    alliance conference centre center court house parliament assembly kingdom states city county
    state health care secretary minister chancellor mayor president news times post
    monday tuesday wednesday thursday friday saturday sunday january february april june july
    august september october november december""".split()
)
# Said of a person: "as Burnham said", "said Duffy". Not at a sentence's start, where any
# noun is capitalised ("Critics argue").
_SPEECH_VERBS = (
    "said|says|told|tells|argued|argues|wrote|writes|added|admitted|warned|believes|believed|"
    "claimed|claims|insisted|insists|suggested|suggests|explained|explains|asked|asks"
)
_SPEAKER = re.compile(
    rf"(?<!^)(?<![.!?]\s)\b({_CAPITALISED}) (?:{_SPEECH_VERBS})\b"
    rf"|\b(?:said|says) ({_CAPITALISED})\b"
)


def asks_for_person(question: str) -> bool:
    """Whether the question asks for someone: it opens with "who", "whom" or "whose" (a leading
    "who" is read as asking for a person even in "who's in charge of..."), or with "which" or
    "what" and a kind of person ("Which GP leader chairs...", "What politician..."). A "who"
    later in the question ("the director who criticised it") only describes someone."""
    return _PERSON_QUESTION.search(question) is not None


def _is_not_name_word(word: str) -> bool:
    """An organisation's, place's or document's head word, singular or plural ("Services")."""
    lower = word.lower()
    return lower in _NOT_NAME_WORDS or lower.removesuffix("s") in _NOT_NAME_WORDS


def _name_words(run: str) -> list[str]:
    """The words of a capitalised run that can be a person's name: those after the last
    organisation or title word ("Health Secretary Andrew Lansley" -> "Andrew Lansley"), less
    capitalised stopwords at either end (a sentence's opening "The", "In", "This")."""
    words = run.split()
    heads = [i for i, word in enumerate(words) if _is_not_name_word(word)]
    if heads:
        words = words[heads[-1] + 1 :]
    while words and words[0].lower() in STOPWORDS:
        words = words[1:]
    while words and words[-1].lower() in STOPWORDS:
        words = words[:-1]
    return words


def names_person(sentence: str) -> bool:
    """Whether the sentence names someone: a title before a capitalised word ("Mr Mayo"), two or
    more capitalised words in a row that are no organisation, place or document ("Andy
    Burnham", but not "National Health Service"), or a capitalised word that says or argues
    something ("said Burnham", "as Burnham argues"). A pattern, so a place of two words ("West
    Midlands") can pass for a name, and a surname alone opening a sentence ("Burnham said") is
    missed: it cannot be told from "Critics said"."""
    if _HONORIFIC.search(sentence):
        return True
    if any(len(_name_words(run.group(0))) >= 2 for run in _CAPITALISED_RUN.finditer(sentence)):
        return True
    for match in _SPEAKER.finditer(sentence):
        word = match.group(1) or match.group(2)
        if word.lower() not in STOPWORDS and not _is_not_name_word(word):
            return True
    return False
