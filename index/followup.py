"""Follow-up questions ("Does he trust councils?"): the conversation's earlier questions are
searched again to learn what it is about (`resolve`), and a question that refers back is
searched within those articles, the person it refers to favoured (`search_turn`). Stateless:
the same history and index always resolve the same way. What counts as referring back is
index/conversation.py's. Every question a search runs here reranks within the search's one
`RerankRun`: after a failure, the rest keep the fused order (index/rerank.py)."""

from __future__ import annotations

import numpy as np

from index.conversation import ConversationContext, Reference, refers_back
from index.highlight import best_sentence
from index.rerank import RerankRun
from index.row_groups import RowBonus, intersect
from index.settings import SearchMode
from index.turns import Turn, TurnSearch


def search_turn(
    turns: TurnSearch,
    question: str,
    context: ConversationContext | None,
    allowed: np.ndarray | None,
    mode: SearchMode,
    top_k: int,
    run: RerankRun | None = None,
) -> Turn:
    """One question's passages; a follow-up (a back-reference with a context) is searched
    within the context's articles, and as a fresh question only when they have nothing for it.
    `run`: the search's use of the reranker (by default one of its own)."""
    run = run if run is not None else RerankRun(turns.reranker)
    reference = refers_back(question) if context is not None else None
    if context is not None and reference is not None:
        turn = _within_context(turns, question, context, reference, allowed, mode, top_k, run)
        if not turns.shows_nothing(turn):
            return turn
    return turns.fresh(question, allowed, mode, top_k, run)


def resolve(
    turns: TurnSearch, earlier: list[str], allowed: np.ndarray | None, mode: SearchMode, top_k: int,
    run: RerankRun | None = None,
) -> ConversationContext | None:
    """The context the latest of `earlier` leaves: each question is searched as a search would
    (a follow-up resolved against the ones before it) and its best passage gives the article and
    speaker. A question on which nothing is found leaves the context as it was; a follow-up
    about a person whose best passage names nobody keeps that person. The people a later "he"
    may mean are that speaker and those named in the sentences that answer, in the first
    passages shown ("Which GP leader chairs the NHS Alliance?" is answered by a passage that
    names him but quotes no one)."""
    index, people_index = turns.index, turns.rows.people
    run = run if run is not None else RerankRun(turns.reranker)
    context: ConversationContext | None = None
    for question in earlier:
        turn = search_turn(turns, question, context, allowed, mode, top_k, run)
        if turns.shows_nothing(turn):
            continue  # nothing was shown, so there is nothing to refer back to
        shown = [index.chunks[row] for row, _ in turn.chosen[: turns.policy.context_passages]]
        reference = refers_back(question) if context is not None else None
        speaker = shown[0].speaker
        if speaker is None and context is not None and reference == "person":
            speaker = context.people[0] if context.people else None
        weights = turns.term_weights(question)
        named = []
        for chunk in shown:
            sentence = best_sentence(chunk.text, weights)
            named += people_index.mentioned(chunk.text[sentence.start : sentence.end])
        people = tuple(dict.fromkeys(([speaker] if speaker else []) + named))
        articles = tuple(dict.fromkeys(chunk.article_id for chunk in shown))
        if context is not None and reference is not None:
            # A follow-up to a follow-up ("How quickly did they catch on?") is read after the
            # question that set the subject, not after the previous vague turn alone.
            question = f"{context.question} {question}"
        context = ConversationContext(articles, people, question)
    return context


def _within_context(
    turns: TurnSearch,
    question: str,
    context: ConversationContext,
    reference: Reference,
    allowed: np.ndarray | None,
    mode: SearchMode,
    top_k: int,
    run: RerankRun,
) -> Turn:
    """A follow-up searched within the conversation's articles, the best one's passages and the
    person it refers to favoured, and the context question's terms added to its BM25 query at
    the policy's `context_terms_weight`. The per-article cap does not apply. A passage counts
    as close when it is close to the follow-up itself or to the follow-up read after the
    question that set the context ("How does the author reply to this commenter?" says little
    on its own)."""
    rows, policy = turns.rows, turns.policy
    scope = intersect(rows.of_articles(context.articles), allowed)
    bonus = RowBonus.total(
        RowBonus.of(rows.of_articles(context.articles[:1]), policy.article_bonus),
        _person_bonus(turns, context, reference, scope),
        turns.question_bonus(question),
    )
    also = (context.question, policy.context_terms_weight)
    fused = turns.reranked(question, turns.rank(question, scope, mode, bonus, also_lexical=also), run)
    chosen = fused.pairs()[:top_k]
    in_context = f"{context.question} {question}"
    if not chosen:
        return Turn([], fused, np.zeros(0), 0.0, 0.0, scoped=True, in_context=in_context,
                    rerank_error=run.error)
    vectors = turns.index.vectors[[row for row, _ in chosen]]
    cosines = vectors @ turns.query_vector(question)
    close = np.maximum(cosines, vectors @ turns.query_vector(in_context))
    return Turn(
        chosen, fused, cosines, closest=float(np.max(close)), first_cosine=float(close[0]),
        scoped=True, in_context=in_context, rerank_error=run.error,
    )


def _person_bonus(
    turns: TurnSearch, context: ConversationContext, reference: Reference, scope: np.ndarray | None
) -> RowBonus | None:
    """Per-row score bonus for the people referred to (those the last answer's speaker and
    sentences name, for a pronoun; the article's author for "the author"): their own words, and
    within `scope` the passages that name them ("Ed Mayo ... says ministers need to" is reported
    speech, which has no speaker). None when no one is referred to."""
    index, bonus = turns.index, turns.policy.speaker_bonus
    author = index.articles[context.article_id].author
    people = {"person": context.people, "author": (author,) if author else (), "thing": ()}[reference]
    if not people:
        return None
    spoken = turns.rows.of_speakers(people)
    if reference != "person":
        return RowBonus.of(spoken, bonus)
    surnames = index.lexical.query(" ".join(person.split()[-1] for person in people))
    naming = index.lexical.score(surnames, scope).top(index.lexical.size, among=scope)
    return RowBonus.of(np.union1d(spoken, naming), bonus)
