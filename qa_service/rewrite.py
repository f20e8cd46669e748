"""Follow-ups rewritten by the language model into a question that stands alone ("What does
he say about taxation?" -> "What does Simon Duffy say about taxation?"), before the search.

Optional (`QA_LLM_REWRITE_FOLLOWUPS`); the search's own resolver (index/conversation.py) stays
underneath: a rewrite that fails or is not a question leaves the follow-up as it was asked,
and a rewrite that still refers back is resolved as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.lexical import analyse
from index.search import Searcher
from qa_service.llm import ChatModel, GenerationError

REWRITE_PROMPT = (
    "Rewrite the reader's last question so that it can be understood without the conversation: "
    "replace he, she, they, it, this and the author with who or what they mean. Keep everything "
    "else. Reply with the rewritten question only."
)
# Written here, about nothing in any archive; the same for every call, so the server caches it.
_EXAMPLE = (
    "Reader: Who wants the new bridge built?\n"
    "Archive: Mayor Ann Cole says the town needs the bridge.\n"
    "Reader: Why does she want it?",
    "Why does Mayor Ann Cole want the new bridge?",
)
_PREFIX = re.compile(r"^\s*(?:rewritten question|question|standalone question)\s*:\s*", re.IGNORECASE)
MAX_TOKENS = 48


def conversation_text(history: Sequence[tuple[str, str]], question: str) -> str:
    """`history`: (role, content) turns, oldest first; the last few are shown."""
    lines = [f"{'Reader' if role == 'user' else 'Archive'}: {' '.join(content.split())[:400]}"
             for role, content in history[-4:]]
    return "\n".join([*lines, f"Reader: {question.strip()}"])


def archive_turns(searcher: Searcher, earlier: Sequence[str], turns: int = 2) -> list[tuple[str, str]]:
    """The last `turns` earlier questions, each with what the archive answered it (who said it,
    and the passage's best sentence), as (role, content) pairs: the model needs to see who "he"
    was, and clients send their own answer texts in many forms, or none."""
    pairs: list[tuple[str, str]] = []
    for position in range(max(0, len(earlier) - turns), len(earlier)):
        question = earlier[position]
        result = searcher.search(question, top_k=1, history=list(earlier[:position]))
        pairs.append(("user", question))
        if result.passages:
            best = result.passages[0]
            who = best.chunk.speaker or best.article.author or best.article.title or "The archive"
            sentence = best.chunk.text[best.highlight.start:best.highlight.end]
            pairs.append(("assistant", f"{who}: {sentence}"))
    return pairs


class FollowupRewriter:
    def __init__(self, model: ChatModel) -> None:
        self.model = model

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """The standalone question. Raises `GenerationError` when the model fails or what it
        wrote is not a rewrite of the question."""
        messages = [
            {"role": "system", "content": REWRITE_PROMPT},
            {"role": "user", "content": _EXAMPLE[0]},
            {"role": "assistant", "content": _EXAMPLE[1]},
            {"role": "user", "content": conversation_text(history, question)},
        ]
        written = "".join(self.model.stream(messages, max_tokens=MAX_TOKENS))
        lines = [line for line in written.strip().splitlines() if line.strip()]
        rewritten = _PREFIX.sub("", lines[0]).strip().strip("\"'“”") if lines else ""
        # A rewrite keeps the question's own words; an answer, or another question, does not.
        asked = set(analyse([question])[0])
        kept = asked & set(analyse([rewritten])[0])
        if not rewritten or len(rewritten) > 3 * len(question) + 80 or (asked and len(kept) < len(asked) / 2):
            raise GenerationError(f"the rewrite of the follow-up was not usable: {rewritten[:120]!r}")
        return rewritten
