"""What qa-eval measures about `confidence: high`: spans to match, whether the first passage
and the cited passage answer, calibration figures, and the command's output (real model,
real index of the sample corpus)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from index.cli import eval_main
from index.errors import QAError
from index.evaluate import (
    EvalQuestion,
    answer_right,
    first_passage_right,
    hit_rank,
    parse_eval_set,
)
from index.records import CONFIDENCE_LEVELS, Passage
from index.reliability import (
    CURVE_THRESHOLDS,
    bin_of,
    expected_calibration_error,
    level_table,
    precision_coverage_curve,
)
from index.search import Searcher

READERS = Path("/work/shared/eval/readers/questions.jsonl")
# Readers' questions the sample answers plainly; the test uses the first given a short answer,
# so a change in which questions get one does not turn this into a test of the ranking.
CONFIDENT_CANDIDATES = (
    "whats richard grimes point about his kitchen",
    "who's michael dixon",
    "what are the root causes of health inequalities",
    "what did miliband and burnham call the nhs",
)


def _rows(*rows: dict) -> list[str]:
    return [json.dumps(row) for row in rows]


# --- parsing ---------------------------------------------------------------------------------

def test_must_contain_any_and_must_contain_are_one_tuple_of_spans() -> None:
    parsed = parse_eval_set(_rows(
        {"question": "a?", "article": "x", "must_contain_any": ["one", "two"]},
        {"question": "b?", "article": "x", "must_contain": "three"},
        {"question": "c?", "article": "x", "must_contain_any": ["four", "five"], "must_contain": "four"},
        {"question": "d?", "out_of_scope": True},
    ), "<test>")
    assert [q.must_contain_any for q in parsed.questions] == [
        ("one", "two"), ("three",), ("four", "five"), (),
    ]
    assert parsed.questions[3].out_of_scope


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ({"question": "no span?", "article": "x"}, "needs must_contain_any or must_contain"),
        ({"question": "empty list?", "article": "x", "must_contain_any": []}, "needs must_contain_any"),
        ({"question": "a string?", "article": "x", "must_contain_any": "span"}, "must be a list of strings"),
        ({"question": "blank?", "article": "x", "must_contain_any": ["  "]}, "is empty"),
    ],
)
def test_a_row_without_a_usable_span_is_an_error_naming_its_line(bad_row: dict, message: str) -> None:
    good = {"question": "fine?", "article": "x", "must_contain": "fine"}
    with pytest.raises(QAError) as raised:
        parse_eval_set(_rows(good, bad_row), "rows.jsonl")
    assert "rows.jsonl:2" in str(raised.value) and message in str(raised.value)


def test_a_conversation_turn_without_a_span_names_the_turn() -> None:
    conversation = {"turns": [{"question": "q1", "article": "x", "must_contain": "a"},
                              {"question": "q2", "article": "x"}]}
    with pytest.raises(QAError, match=r"convo.jsonl:1: .*turn 2: an answerable row needs"):
        parse_eval_set(_rows(conversation), "convo.jsonl")


def test_the_readers_files_parse() -> None:
    questions = parse_eval_set(READERS.read_text(encoding="utf-8").splitlines(), str(READERS)).questions
    assert len(questions) == 100 and sum(q.out_of_scope for q in questions) == 20
    assert all(q.must_contain_any for q in questions if not q.out_of_scope)


# --- reliability figures on fixed pairs ------------------------------------------------------

@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], None),  # nothing measured: no figure, not a perfect 0
        ([(0.5, True), (0.5, False)], 0.0),  # half right at 0.5: calibrated
        ([(1.0, True)], 0.0),  # 1.0 falls in the last bin, not an eleventh
        ([(0.0, True)], 1.0),
        # bin 9: mean 0.95, 2/3 right -> 0.2833 * 3/4; bin 1: 0.15 vs 0 -> 0.15 * 1/4
        ([(0.95, True), (0.95, True), (0.95, False), (0.15, False)], 0.25),
        # bin 8: mean 0.85, 1/2 right -> 0.35 * 2/3; bin 3: 0.3 vs 1 -> 0.7 * 1/3
        ([(0.82, True), (0.88, False), (0.3, True)], 0.4666667),
    ],
)
def test_expected_calibration_error(pairs: list[tuple[float, bool]], expected: float | None) -> None:
    ece = expected_calibration_error(pairs)
    assert ece == expected if expected is None else ece == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("probability", "index"), [(0.0, 0), (0.05, 0), (0.1, 1), (0.35, 3), (0.99, 9), (1.0, 9)]
)
def test_bins_are_ten_equal_widths(probability: float, index: int) -> None:
    assert bin_of(probability) == index


def test_a_probability_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="must lie in"):
        bin_of(1.2)


CURVE_PAIRS = [
    (0.97, True), (0.92, True), (0.85, False), (0.75, True), (0.65, False), (0.55, True), (0.4, True),
]


@pytest.mark.parametrize(
    ("threshold", "answered", "right", "precision", "coverage"),
    [  # 8 answerable questions: one of them had no probability and never passes a threshold
        (0.5, 6, 4, 4 / 6, 4 / 8),
        (0.6, 5, 3, 3 / 5, 3 / 8),
        (0.7, 4, 3, 3 / 4, 3 / 8),
        (0.8, 3, 2, 2 / 3, 2 / 8),
        (0.9, 2, 2, 1.0, 2 / 8),
        (0.95, 1, 1, 1.0, 1 / 8),
    ],
)
def test_precision_coverage_curve(
    threshold: float, answered: int, right: int, precision: float, coverage: float
) -> None:
    point = precision_coverage_curve(CURVE_PAIRS, answerable=8)[CURVE_THRESHOLDS.index(threshold)]
    assert (point.threshold, point.answered, point.right) == (threshold, answered, right)
    assert point.precision == pytest.approx(precision) and point.coverage == pytest.approx(coverage)


def test_curve_edges_threshold_is_inclusive_and_empty_ratios_are_none() -> None:
    at, above = precision_coverage_curve([(0.9, True)], answerable=0, thresholds=(0.9, 0.95))
    assert (at.answered, at.precision, at.coverage) == (1, 1.0, None)
    assert (above.answered, above.precision) == (0, None)


def test_level_table_lists_every_level_and_refuses_unknown_ones() -> None:
    rows = level_table([("high", True), ("high", False), ("low", False)], CONFIDENCE_LEVELS)
    assert [(r.level, r.results, r.right, r.share_right) for r in rows] == [
        ("high", 2, 1, 0.5), ("low", 1, 0, 0.0), ("none", 0, 0, None),
    ]
    with pytest.raises(ValueError, match="medium"):
        level_table([("medium", True)], CONFIDENCE_LEVELS)


# --- on real search results ------------------------------------------------------------------

def _readers_question(text: str) -> EvalQuestion:
    lines = READERS.read_text(encoding="utf-8").splitlines()
    return next(q for q in parse_eval_set(lines, str(READERS)).questions if q.question == text)


def _holds_a_span(question: EvalQuestion, passage: Passage) -> bool:
    """Reading the passage as a person would: right article, and a span in it once curly
    quotes and line breaks are set aside."""
    def plain(text: str) -> str:
        return " ".join(text.replace("’", "'").replace("‘", "'").split()).lower()
    return passage.chunk.article_id == question.article and any(
        plain(span) in plain(passage.chunk.text) for span in question.must_contain_any
    )


def test_first_passage_and_answer_agree_with_reading_the_passages(searcher: Searcher) -> None:
    searched = [(q, searcher.search(q.question)) for q in map(_readers_question, CONFIDENT_CANDIDATES)]
    for question, result in searched:  # whatever the confidence, the functions read the passages
        read = [_holds_a_span(question, p) for p in result.passages]
        assert first_passage_right(question, result) is (bool(read) and read[0])
        cited = None if result.answer is None else read[result.answer.citation - 1]
        assert answer_right(question, result) is cited
    answered = [(q, r) for q, r in searched if r.answer is not None]
    levels = [r.confidence for _, r in searched]
    assert answered, f"none of {CONFIDENT_CANDIDATES} got a short answer: {levels}"
    question, result = answered[0]
    read = [_holds_a_span(question, p) for p in result.passages]
    assert hit_rank(question, result) == (read.index(True) + 1 if True in read else None)

    # The answer moved to a passage that holds a span is right, to one that does not is wrong,
    # and the first passage is judged on its own either way.
    right = [p.rank for p, holds in zip(result.passages, read) if holds]
    wrong = [p.rank for p, holds in zip(result.passages, read) if not holds]
    assert right and wrong, f"need passages of both kinds: {read}"
    for rank, expected in ((right[0], True), (wrong[0], False)):
        moved = replace(result, answer=replace(result.answer, citation=rank))
        assert answer_right(question, moved) is expected
        assert first_passage_right(question, moved) is read[0]
    assert answer_right(question, replace(result, answer=None)) is None

    # Another article expected, or nothing answering at all: never right.
    elsewhere = replace(question, article=f"{question.article}-elsewhere")
    assert not first_passage_right(elsewhere, result) and answer_right(elsewhere, result) is False
    out_of_scope = replace(question, article=None, must_contain_any=(), out_of_scope=True)
    assert not first_passage_right(out_of_scope, result) and hit_rank(out_of_scope, result) is None


def test_out_of_scope_question_never_has_its_first_passage_right(searcher: Searcher) -> None:
    lines = READERS.read_text(encoding="utf-8").splitlines()
    for question in [q for q in parse_eval_set(lines, str(READERS)).questions if q.out_of_scope][:5]:
        result = searcher.search(question.question)
        assert not first_passage_right(question, result)
        assert answer_right(question, result) in (None, False)


# --- qa-eval end to end ----------------------------------------------------------------------

@pytest.mark.slow
def test_qa_eval_reports_what_confident_answers_promise(
    tmp_path: Path, sample_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = READERS.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    chosen = [row for row in rows if not row.get("out_of_scope")][:8] + [
        row for row in rows if row.get("out_of_scope")][:2]
    chosen.append({"question": "Which countries have co-operatives running hospitals?",
                   "article": "002_9aef70656a6b12be", "must_contain": "Japan and Spain",
                   "speaker": "Ed Mayo"})
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in chosen), encoding="utf-8")

    assert eval_main([str(path), "--index", str(sample_index), "--json", "--details"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["questions"] == 11
    assert 0 <= scores["confident_right"] <= scores["confident"] <= 11
    if scores["confident"]:
        assert scores["precision"] == round(scores["confident_right"] / scores["confident"], 4)
    assert scores["coverage"] == round(scores["confident_right"] / 9, 4)
    assert 0 <= scores["speaker_right"] <= scores["speaker_checked"] <= scores["confident_right"]
    # a speaker shown where the row names none is checked, and never right
    assert scores["speaker_right"] <= scores["speaker_checked"] - scores["speaker_unlabelled"]
    assert scores["out_of_scope_answered"] <= 2
    reliability = scores["reliability"]
    assert list(reliability) == list(CONFIDENCE_LEVELS)
    assert sum(row["results"] for row in reliability.values()) == 11
    assert all(row["first_passage_right"] <= row["results"] for row in reliability.values())
    assert sum(row["first_passage_right"] for row in reliability.values()) == round(scores["hit_at_1"] * 9)
    assert 0 <= scores["with_probability"] <= 11
    if scores["with_probability"]:
        assert 0.0 <= scores["expected_calibration_error"] <= 1.0
        assert [p["threshold"] for p in scores["precision_coverage_curve"]] == list(CURVE_THRESHOLDS)
    else:  # no calibration yet: nothing measured, so no figure
        assert scores["expected_calibration_error"] is None and scores["precision_coverage_curve"] is None

    details = scores["details"]
    wrong = [row for row in details if row["answer_right"] is False]
    assert len(wrong) == scores["confident"] - scores["confident_right"] == len(scores["wrong_answers"])
    assert all({"question", "answer", "answer_speaker", "expected_article", "expected_spans",
                "expected_speaker"} <= set(row) for row in scores["wrong_answers"])
    assert all(row["rank"] is None or row["rank"] <= 5 for row in details)  # the served top_k

    assert eval_main([str(path), "--index", str(sample_index), "--top-k", "2", "--details"]) == 0
    printed = capsys.readouterr().out
    assert "first passage right, by confidence level" in printed
    assert "confident_right" in printed and "expected_calibration_error" in printed
    assert "wrong confident answers:" in printed
    assert '"rank": 3' not in printed and '"rank": 4' not in printed  # only two passages searched


def test_qa_eval_refuses_a_top_k_below_one(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"question": "q?", "out_of_scope": True}) + "\n")
    with pytest.raises(SystemExit) as exited:
        eval_main([str(path), "--index", str(tmp_path), "--top-k", "0"])
    assert exited.value.code == 2


@pytest.mark.slow
def test_qa_eval_scores_a_conversations_first_turn_with_the_single_questions(
    tmp_path: Path, sample_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = {"question": "who argues against means-testing?", "article": "000_b56ffdfc634a8662",
              "must_contain": "no moral case for social care means-testing"}
    conversation = {"turns": [
        {"question": "What does Richard Grimes say about councils running health care?",
         "article": "001_af1d1ee797eafa4c", "must_contain": "Richard Grimes"},
        {"question": "What is his example?", "article": "001_af1d1ee797eafa4c", "must_contain": "kitchen"},
    ]}
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(single) + "\n" + json.dumps(conversation) + "\n", encoding="utf-8")
    assert eval_main([str(path), "--index", str(sample_index), "--json", "--details"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["questions"] == 2 and scores["followup_questions"] == 1
    asked = [row["question"] for row in scores["details"]]
    assert asked[:2] == [single["question"], conversation["turns"][0]["question"]]
