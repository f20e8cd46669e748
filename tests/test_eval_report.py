"""`python -m bench eval`: the reported sets scored on the sample index, and the tables built
from those scores say what the scores say."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import eval_report
from bench.publish import publish, read_blocks

FRESH_ROWS = [
    {"question": "Who argues against means-testing social care?", "article": "000_b56ffdfc634a8662",
     "must_contain_any": ["no moral case for social care means-testing"]},
    {"question": "What does the NHS spend on submarines?", "out_of_scope": True},
    {"turns": [{"question": "What did the writer's grandfather remember about the NHS?",
                "article": "000_b56ffdfc634a8662", "must_contain_any": ["memoir"]},
               {"question": "what did he say was free?", "article": "000_b56ffdfc634a8662",
                "must_contain_any": ["free"]}]},
]


@pytest.fixture(scope="module")
def scored(searcher):
    return [eval_report.score_set(searcher, "small set", FRESH_ROWS)]


def test_reported_sets_are_the_halves_nobody_fitted_on():
    sets = eval_report.reported_sets()
    assert len(sets) == 3 and all(sets.values())
    from bench.eval_split import EVAL_DIR, read_rows, split_rows

    tune = split_rows(read_rows(EVAL_DIR / "readers"))["tune"]
    readers = next(rows for name, rows in sets.items() if name.startswith("readers"))
    assert not [row for row in readers if row in tune]


def test_scores_count_single_questions_with_first_turns_and_follow_ups_apart(scored):
    alone, followups = scored[0].alone, scored[0].followups
    assert alone["questions"] == 3  # two single questions and the conversation's first turn
    assert followups is not None and followups["questions"] == 1


def test_tables_show_one_row_per_part_and_agree_with_the_scores(scored):
    sets = eval_report.sets_table(scored).splitlines()
    assert [line.split(" | ")[0] for line in sets[2:4]] == [
        "| small set: questions and first turns", "| small set: follow-ups"]
    alone = scored[0].alone
    cells = [cell.strip() for cell in sets[2].split("|")[1:-1]]
    assert cells[1] == "2 / 1" and cells[4] == str(alone["confident"]) and cells[5] == str(alone["confident_right"])
    reliability = eval_report.reliability_table(scored).splitlines()
    high, low, none = (cell.strip() for cell in reliability[2].split("|")[2:5])
    assert sum(int(cell.split(" / ")[1]) for cell in (high, low, none)) == alone["questions"]
    curve = eval_report.curve_table(scored, served=(0.86, 0.9)).splitlines()
    assert len(curve) == 2 + len(eval_report.THRESHOLDS) + 1  # 0.9 is a row already
    assert [line.split("|")[1].strip() for line in curve[2:]][3:6] == ["0.8", "0.86", "0.9"]
    answered = [int(line.split("|")[2].split(",")[0]) for line in curve[2:]]
    assert answered == sorted(answered, reverse=True)  # a higher bar never answers more


def test_publishing_writes_every_table_into_its_own_block(scored, tmp_path: Path):
    doc = tmp_path / "quality.md"
    doc.write_text("# Quality\n\nHand-written text stays.\n")
    publish(doc, eval_report.tables(scored), "python -m bench eval", commit="abc1234", day="2026-12-07")
    blocks = read_blocks(doc.read_text())
    assert list(blocks) == ["eval-sets", "eval-reliability", "eval-curve"]
    assert all(block.command == "python -m bench eval" and block.commit == "abc1234" for block in blocks.values())
    assert "Hand-written text stays." in doc.read_text()


def test_squad_halves_are_fixed_even_and_together_the_whole_set():
    from bench.eval_split import SQUAD_DEV, squad_halves
    from bench.quality_data import load_squad

    halves = squad_halves()
    assert abs(len(halves["tune"]) - len(halves["report"])) <= 1
    assert len(halves["tune"]) + len(halves["report"]) == len(load_squad(SQUAD_DEV, sample=None).queries)
    assert squad_halves()["report"][:5] == halves["report"][:5]  # seeded: the same every run
    assert all(row["must_contain_any"] for row in halves["report"])


def test_squad_row_shows_each_level_and_the_confident_answers(scored):
    alone = scored[0].alone
    header, _, row = eval_report.squad_table(alone).splitlines()[:3]
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert len(cells) == len(header.split("|")) - 2 == 7
    assert cells[0].endswith(f"({alone['questions']} questions)")
    assert sum(int(cell.split(" / ")[1]) for cell in cells[1:4]) == alone["questions"]
