"""A conversation's follow-ups: whether a question refers back to what was just discussed
("Does he trust councils?"), and the context it refers to. `Searcher.search` resolves the
context by searching the earlier questions again and searches the follow-up within it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from index.errors import InvalidQueryError

# History: more turns than this is refused (the service sends at most 20); only the last few
# are re-run, since a back-reference points at what was just discussed.
MAX_HISTORY_TURNS = 20
HISTORY_TURNS_USED = 3
# Longer turns are refused, so that a follow-up costs what a few questions do: an earlier
# question (a user turn, the only kind searched) may be as long as a question
# (QA_MAX_QUESTION_CHARS's default), any turn (the widget quotes the archive's answers back,
# cut to 2,000 characters) MAX_TURN_CHARS, and all of a request's turns MAX_HISTORY_CHARS.
MAX_EARLIER_QUESTION_CHARS = 1_000
MAX_TURN_CHARS = 2_000
MAX_HISTORY_CHARS = 30_000

Reference = Literal["person", "author", "thing"]

# Third-person pronouns, or "this commenter", point at who answered the previous question.
_PERSON_REFERENCE = re.compile(
    r"\b(he|she|him|his|her|hers|himself|herself|they|them|their|theirs|themselves)\b"
    r"|\b(the|this|that)\s+(same\s+)?(person|commenter|commentator|speaker|man|woman)\b",
    re.IGNORECASE,
)
# "the author" is the writer of the article the previous answer came from.
_AUTHOR_REFERENCE = re.compile(r"\b(the|this|that)\s+(author|writer)\b", re.IGNORECASE)
# "it", "this?"/"that?" on their own, "what else", or a determiner with a noun for an
# article or its subject ("the plan", "this proposal") point at the previous answer's article.
_THING_REFERENCE = re.compile(
    r"\b(it|its|else)\b"
    r"|\b(this|that|these|those)\s*([?.!,;]|$)"
    r"|\b(the|this|that|these|those|such)\s+(article|piece|post|blog|essay|report|briefing|"
    r"plan|proposal|policy|scheme|idea|argument|point|claim|view|story|comment)s?\b",
    re.IGNORECASE,
)
# A question that opens with "and", "what about" or "how about", or a bare question word
# ("Why?"), goes on with the conversation's subject without naming it ("And staff?").
_ELLIPSIS = re.compile(
    r"^\W*(and|also|so|but)\b|^\W*(what|how)\s+about\b|^\W*(why|how|when|where|who)\W*$",
    re.IGNORECASE,
)


def refers_back(question: str) -> Reference | None:
    """What a question points back at, if anything: a person (he, she, they...), the author
    of the article (the author, the writer), or the article or its subject (it, this plan,
    "And staff?", "What about pay?")."""
    if _AUTHOR_REFERENCE.search(question):
        return "author"
    if _PERSON_REFERENCE.search(question):
        return "person"
    if _THING_REFERENCE.search(question) or _ELLIPSIS.search(question):
        return "thing"
    return None


@dataclass(frozen=True)
class ConversationContext:
    """What the conversation was last about: the articles of the latest answer's first
    passages (the best one's first), the people a "he" or "they" may mean (the best passage's
    speaker first, then those the answer names), and the question that found them."""

    articles: tuple[str, ...]
    people: tuple[str, ...]
    question: str

    @property
    def article_id(self) -> str:
        """The article of the latest answer's best passage."""
        return self.articles[0]


def checked_history(history: Sequence[str] | None) -> list[str]:
    """The earlier questions, stripped; refuses what cannot be a list of questions, more
    than `MAX_HISTORY_TURNS` and one longer than `MAX_EARLIER_QUESTION_CHARS`."""
    if history is None:
        return []
    if isinstance(history, str):
        raise InvalidQueryError("history must be a list of earlier questions, not one string")
    if len(history) > MAX_HISTORY_TURNS:
        raise InvalidQueryError(
            f"history has {len(history)} questions; at most {MAX_HISTORY_TURNS} are accepted"
        )
    earlier = []
    for position, question in enumerate(history):
        if not isinstance(question, str):
            raise InvalidQueryError(
                f"history[{position}] is {type(question).__name__}, not a question string"
            )
        if not question.strip():
            raise InvalidQueryError(f"history[{position}] is an empty question")
        if len(question) > MAX_EARLIER_QUESTION_CHARS:
            raise InvalidQueryError(f"history[{position}] is {earlier_question_too_long(len(question))}")
        earlier.append(question.strip())
    return earlier


def earlier_question_too_long(length: int) -> str:
    return (
        f"an earlier question of {length} characters; the limit is {MAX_EARLIER_QUESTION_CHARS}, "
        "as for a question"
    )


def history_too_long(length: int) -> str:
    return (
        f"history is {length} characters in all; the limit is {MAX_HISTORY_CHARS} "
        "(a follow-up is resolved by the latest turns: send fewer earlier ones)"
    )
