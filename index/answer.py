"""The answer stage: the sentence of the first passage that answers the question, and who
said it, or no short answer.

A short answer is a sentence that can answer (never a byline, a heading, a list marker, a
question, a caption or a fragment: `index/highlight.answers`), that shares a word with
the question, and that is of the kind asked for: a figure for "how many"
(`index/answer_type.py`), a person for "who" (the sentence names one, or its speaker is known).
Its speaker is the person the text says spoke that sentence (`index/attribution.py`): a
quotation inside an author's paragraph is the quoted person's, or nobody's."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from index.answer_type import asks_for_person, names_person
from index.attribution import sentence_speaker
from index.highlight import answers
from index.people import PersonNames
from index.records import Answer, Passage


def short_answer(
    question: str,
    passage: Passage,
    weights: Mapping[str, float],
    can_answer: Callable[[str], bool] | None,
    people: PersonNames | None = None,
) -> Answer | None:
    """The short answer `passage` (the first shown) gives `question`, or None: its highlighted
    sentence, when that can answer. `weights` are the question's terms with their idf (those
    the highlight was chosen with); `can_answer` its answer type's test (a figure);
    `people` the archive's speakers, to complete a surname ("Mr Mayo") to a name."""
    text = passage.chunk.text
    span = passage.highlight  # the passage's best sentence for this question
    if not answers(text, span, weights, can_answer):
        return None
    sentence = text[span.start : span.end]
    chunk = passage.chunk
    speaker = sentence_speaker(
        text, span.start, span.end, chunk.speaker, chunk.section, passage.article.author, people
    )
    if asks_for_person(question) and speaker is None and not names_person(sentence):
        return None
    return Answer(text=sentence, speaker=speaker, citation=passage.rank)


def term_share(weights: Mapping[str, float], terms: Iterable[str]) -> float:
    """The share of the question's idf weight (`weights`) that the analysed `terms` hold; 1.0
    for a question with no searchable terms, which leaves the decision to the other signals."""
    total = sum(weights.values())
    if total <= 0:
        return 1.0
    present = set(terms)
    return sum(w for term, w in weights.items() if term in present) / total
