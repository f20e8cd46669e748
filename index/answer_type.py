"""Whether a question asks for a figure, and whether a sentence can give one.

"How many nurses does the NHS employ?" can only be answered by a sentence with a number in
it. A near-domain question that the archive cannot answer often lands on a passage that shares
its words ("nurses", "NHS") but not its answer, so the figure is looked for before a short
answer is given (`Searcher.search`), and the highlighted sentence prefers one that gives it
(`index/highlight.best_sentence`). Only the wh-phrase is read: no model, no parsing.

"When" questions are left alone: they are answered as often by "at nine", "after the war" or
"before the pandemic" as by a date."""

from __future__ import annotations

import re
from collections.abc import Callable

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
