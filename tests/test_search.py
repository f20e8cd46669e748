"""Hybrid search on the sample corpus: cited passages, filters, highlight, abstention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.encoder import Encoder
from index.errors import InvalidQueryError
from index.evaluate import normalise
from index.highlight import best_sentence
from index.records import Filters, Highlight
from index.search import Searcher
from index.settings import Settings
from index.store import load_index
from ingest.pipeline import run_ingest


def test_means_testing_question_cites_simon_duffy_first(answering_searcher: Searcher) -> None:
    searcher = answering_searcher
    result = searcher.search("who argues against means-testing?")
    top = result.passages[0]
    assert not result.abstained
    assert top.chunk.article_id == "000_b56ffdfc634a8662"
    assert "no moral case for social care means-testing" in top.chunk.text
    assert (top.chunk.speaker, top.article.author, top.chunk.section) == ("Simon Duffy", "Simon Duffy", "body")
    assert result.answer is not None and result.answer.speaker == "Simon Duffy"
    assert result.index_version == searcher.version


def test_highlight_is_a_sentence_of_the_passage(searcher: Searcher) -> None:
    result = searcher.search("Which countries have co-operatives running hospitals?")
    top = result.passages[0]
    sentence = top.chunk.text[top.highlight.start : top.highlight.end]
    assert "Japan and Spain" in sentence
    assert len(sentence) < len(top.chunk.text)
    assert top.chunk.speaker == "Ed Mayo"


def test_highlight_weighs_rare_question_words_above_common_ones() -> None:
    text = "Health and social care should be funded by taxes. Money could come from the defence budget."
    common = {"health": 0.8, "social": 1.2, "care": 0.9}
    rare = {"defenc": 4.0, "budget": 2.4}

    def sentence(highlight: Highlight) -> str:
        return text[highlight.start : highlight.end]

    # Counted alike, three matching words win; weighted by idf, the rare pair does.
    flat = best_sentence(text, dict.fromkeys([*common, *rare], 1.0))
    assert sentence(flat).startswith("Health and social care")
    weighted = best_sentence(text, common | rare)
    assert sentence(weighted) == "Money could come from the defence budget."


def test_out_of_scope_question_abstains(searcher: Searcher) -> None:
    result = searcher.search("How do I bake sourdough bread?")
    assert result.abstained and result.passages == [] and result.answer is None


def test_comment_speaker_is_cited(searcher: Searcher) -> None:
    result = searcher.search("Who thinks food and energy security are federal concerns?")
    top = result.passages[0]
    assert (top.chunk.section, top.chunk.speaker) == ("comment", "Stephen Gwynne")


def test_filters_restrict_article_speaker_and_section(searcher: Searcher) -> None:
    by_article = searcher.search("NHS reform", filters=Filters(article_ids=frozenset({"003_34ccfc135a31d0e8"})))
    assert by_article.passages and {p.chunk.article_id for p in by_article.passages} == {"003_34ccfc135a31d0e8"}
    by_speaker = searcher.search("council budgets", filters=Filters(speakers=frozenset({"richard grimes"})))
    assert by_speaker.passages and {p.chunk.speaker for p in by_speaker.passages} == {"Richard Grimes"}
    comments = searcher.search("money for public services", filters=Filters(sections=frozenset({"comment"})))
    assert comments.passages and {p.chunk.section for p in comments.passages} == {"comment"}


def test_date_filters_compare_articles_dates_to_the_day(tmp_path: Path, encoder: Encoder) -> None:
    articles, index = tmp_path / "articles", tmp_path / "index"
    articles.mkdir()
    for name, date in (("older", "2019-01-01"), ("stamped", "2021-03-04T10:00:00Z"), ("undated", None)):
        front = f"---\ntitle: Ferry {name}\n" + (f"date: {date}\n" if date else "") + "---\n"
        (articles / f"{name}.md").write_text(front + f"The {name} ferry sails to Stroma at dawn.\n", encoding="utf-8")
    run_ingest(articles, Settings(index_dir=index), encoder=encoder, progress=False)
    searcher = Searcher(load_index(index), encoder, Settings(index_dir=index))

    def dated(date_from: str | None, date_to: str | None) -> set[str]:
        result = searcher.search("When does the ferry sail?", filters=Filters(date_from=date_from, date_to=date_to))
        return {p.chunk.article_id for p in result.passages}

    assert dated("2021-03-04", "2021-03-04") == {"stamped"}  # its time of day is on that day
    assert dated(None, "2020-12-31") == {"older"}
    assert dated("2019-01-01", None) == {"older", "stamped"}  # an undated article has no date to match


def test_unknown_article_filter_finds_nothing(searcher: Searcher) -> None:
    result = searcher.search("NHS", filters=Filters(article_ids=frozenset({"no-such-article"})))
    assert result.abstained and result.passages == []


def test_per_article_cap(searcher: Searcher, sample_index: Path, encoder: Encoder) -> None:
    # The passages shown are the ranking with each article's passages past the cap skipped, the
    # places they leave filled by the next articles' passages.
    cap = searcher.settings.per_article_cap
    uncapped = Searcher(searcher.index, encoder, Settings(index_dir=sample_index, per_article_cap=100))
    capped_somewhere = False
    for question in ("NHS health and social care", "money for public services", "the NHS"):
        ranked = [p.chunk for p in uncapped.search(question, top_k=40).passages]
        taken: dict[str, int] = {}
        expected = []
        for chunk in ranked:
            if taken.get(chunk.article_id, 0) < cap:
                taken[chunk.article_id] = taken.get(chunk.article_id, 0) + 1
                expected.append(chunk.id)
        shown = searcher.search(question, top_k=10).passages
        assert [p.chunk.id for p in shown] == expected[:10], question
        counts = [sum(c.article_id == a for c in ranked[:10]) for a in {c.article_id for c in ranked[:10]}]
        capped_somewhere |= max(counts) > cap
    assert capped_somewhere  # the cap changed what was shown, on at least one of the questions


def test_bad_queries_are_refused(searcher: Searcher) -> None:
    with pytest.raises(InvalidQueryError, match="empty"):
        searcher.search("   ")
    with pytest.raises(InvalidQueryError, match="top_k"):
        searcher.search("NHS", top_k=-1)
    with pytest.raises(InvalidQueryError, match="unknown section"):
        searcher.search("NHS", filters=Filters(sections=frozenset({"sidebar"})))


def test_single_retrievers_are_available(searcher: Searcher) -> None:
    for mode in ("dense", "lexical"):
        result = searcher.search("What is the Right to Provide scheme?", mode=mode)
        assert any("right to provide" in normalise(p.chunk.text) for p in result.passages[:3])


def test_search_time_analysis_matches_the_index_tokens(searcher: Searcher) -> None:
    # Questions and highlights use `analyse`; BM25 was built by `tokenize_corpus`. A word
    # analysed differently on the two sides could never match.
    from index.lexical import analyse, tokenize_corpus
    from index.segment import lexical_text

    articles = searcher.index.articles
    texts = [lexical_text(chunk, articles[chunk.article_id].title) for chunk in searcher.index.chunks]
    corpus = tokenize_corpus(texts)
    words = {index: word for word, index in corpus.vocab.items()}
    assert [[words[i] for i in ids] for ids in corpus.ids] == analyse(texts)


def test_paraphrase_is_shown_not_refused(searcher: Searcher) -> None:
    # The article says "Community health councils were very popular and should be
    # reintroduced"; the question shares almost none of its words.
    result = searcher.search(
        "What well-liked local patient watchdogs does the single-public-service proposal want brought back?"
    )
    assert not result.abstained and result.confidence in ("high", "low")
    assert any("Community health councils" in p.chunk.text for p in result.passages[:3])
    if result.confidence == "low":
        assert result.answer is None  # shown as possibly related, with no short answer


def test_near_domain_question_gets_no_confident_answer(searcher: Searcher) -> None:
    # Health and social care, but nothing in the five articles says what the Dilnot
    # Commission recommended.
    result = searcher.search("What lifetime cap on care costs did the Dilnot Commission recommend?")
    assert result.confidence != "high" and result.answer is None


def test_confidence_levels_mean_what_they_say(searcher: Searcher) -> None:
    for question in ("who argues against means-testing?", "How do I bake sourdough bread?",
                     "What lifetime cap on care costs did the Dilnot Commission recommend?"):
        result = searcher.search(question)
        assert result.abstained == (result.confidence == "none")
        assert (result.answer is not None) == (result.confidence == "high")
        assert bool(result.passages) == (result.confidence != "none")


def test_bm25_finds_an_article_by_its_title(tmp_path: Path, encoder: Encoder) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "parking.txt").write_text(
        "Visitors who leave a car at the site now pay by the hour, and staff say the fees "
        "fall hardest on families making daily trips.", encoding="utf-8")
    (articles / "parking.meta.json").write_text(json.dumps({"title": "Hospital parking charges"}))
    (articles / "meals.txt").write_text(
        "Children at the town's primary schools will get a hot lunch every weekday from "
        "September, paid for by the council.", encoding="utf-8")
    (articles / "meals.meta.json").write_text(json.dumps({"title": "Free school meals"}))
    settings = Settings(index_dir=tmp_path / "index")
    run_ingest(articles, settings, encoder=encoder, progress=False)
    titled = Searcher(load_index(settings.index_dir), encoder, settings)
    # "parking" and "charges" are only in the title; BM25 alone must still find the article.
    result = titled.search("hospital parking charges", mode="lexical")
    assert result.passages and result.passages[0].chunk.article_id == "parking"
    assert "parking" not in result.passages[0].chunk.text.lower()


def test_question_about_readers_favours_their_comments(searcher: Searcher) -> None:
    def comments(question: str) -> list[bool]:
        return [p.chunk.section == "comment" for p in searcher.search(question, top_k=10).passages]

    # The same subject asked of the readers and of the article: the readers' question gets
    # more of the comments, first and overall; the article's mostly the body.
    readers = comments("What do readers say about social care funding?")
    article = comments("What does the article say about social care funding?")
    assert len(readers) == len(article) == 10
    assert sum(readers[:3]) >= 2 and sum(readers[:3]) > sum(article[:3])
    assert sum(readers) > 5 > sum(article)


def test_bm25_beside_the_embedding_gives_the_same_answers(
    searcher: Searcher, sample_index: Path, encoder: Encoder
) -> None:
    inline = Searcher(load_index(sample_index), encoder, Settings(index_dir=sample_index, parallel_lexical=False))
    asked = [
        ("who argues against means-testing?", None, None, None),
        ("Which reader thinks care homes show that privatisation has failed?", None, None, None),
        ("What is missing from the NHS Long Term Plan?", Filters(sections=["body"]), None, None),
        ("Does he trust councils with the money?", None, ["Who compares healthcare to having a kitchen replaced?"], None),
        ("Which countries have co-operatives running hospitals?", None, None, "lexical"),
    ]
    for question, filters, history, mode in asked:
        got = searcher.search(question, filters=filters, history=history, mode=mode)
        expected = inline.search(question, filters=filters, history=history, mode=mode)
        assert [(p.chunk.id, p.score) for p in got.passages] == [(p.chunk.id, p.score) for p in expected.passages]
        assert got.confidence == expected.confidence
    assert searcher.rank("co-operatives running hospitals", depth=20) == inline.rank(
        "co-operatives running hospitals", depth=20
    )
