"""Published tables (bench/publish.py): a block is replaced in place and nothing else of the file
changes, a new one is appended under its heading, the provenance line reads back, and a
malformed document is refused before anything is written."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bench import publish as publishing
from bench.publish import (Table, command, current_commit, markdown_table, print_and_publish, publish,
                           read_blocks)

COMMAND = "python -m bench latency --sizes 300"
TABLE = "| a | b |\n| --- | --- |\n| 1 | 2 |"


@pytest.fixture(autouse=True)
def fixed_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publishing, "current_commit", lambda: "abc1234")


def block(name: str, body: str, command: str = COMMAND, commit: str = "0123456789", day: str = "2026-11-23") -> str:
    return (f"<!-- table: {name} -->\n{body}\n\nMeasured by `{command}` at commit `{commit}` on {day}.\n"
            f"<!-- /table: {name} -->")


def doc_with_blocks(tmp_path: Path) -> tuple[Path, str, str]:
    """A document with prose (odd spacing, no final line break) around two blocks: its path,
    and the text before and after the `latency` block."""
    before = "# Benchmarks\n\nProse  with trailing spaces   \n\n" + block("ingest-throughput", "| old |") + "\n\nMore — prose.\n\n"
    after = "\n\n```\n<!-- table: NOT-A-BLOCK -->\n```\n\nLast line without a break"
    doc = tmp_path / "benchmarks.md"
    doc.write_bytes((before + block("latency", "| old latency |") + after).encode("utf-8"))
    return doc, before, after


def test_replacing_a_block_leaves_the_rest_of_the_file_byte_for_byte(tmp_path: Path) -> None:
    doc, before, after = doc_with_blocks(tmp_path)
    publish(doc, [Table("latency", TABLE + "\n\nA short paragraph.", "## Latency")], COMMAND)
    text = doc.read_bytes().decode("utf-8")
    new = block("latency", TABLE + "\n\nA short paragraph.", commit="abc1234", day=text.split(" on ")[-1][:10])
    assert text == before + new + after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmarks.md"]  # no temporary file left


def test_blocks_are_replaced_wherever_they_are_and_in_any_order(tmp_path: Path) -> None:
    doc, _, _ = doc_with_blocks(tmp_path)
    publish(doc, [Table("latency", "| L |", "## L"), Table("ingest-throughput", "| I |", "## I")], COMMAND)
    blocks = read_blocks(doc.read_text())
    assert {name: b.body for name, b in blocks.items()} == {"ingest-throughput": "| I |", "latency": "| L |"}
    assert doc.read_text().count("<!-- table:") == 3  # the two blocks, and the fenced example


def test_a_new_block_is_appended_under_its_heading(tmp_path: Path) -> None:
    doc, _, _ = doc_with_blocks(tmp_path)
    old = doc.read_text()
    publish(doc, [Table("ann-recall", TABLE, "## Dense index: recall@10")], COMMAND)
    text = doc.read_text()
    assert text.startswith(old + "\n")
    assert text[len(old):].startswith("\n\n## Dense index: recall@10\n\n<!-- table: ann-recall -->\n" + TABLE + "\n\n")
    assert text.endswith("<!-- /table: ann-recall -->\n")
    assert read_blocks(text)["ann-recall"].body == TABLE


def test_a_document_that_does_not_exist_is_created(tmp_path: Path) -> None:
    doc = tmp_path / "new" / "quality.md"
    publish(doc, [Table("quality-beir", TABLE, "## BEIR")], "python -m bench quality")
    assert doc.read_text().startswith("## BEIR\n\n<!-- table: quality-beir -->\n")


def test_the_provenance_line_is_read_back(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(block("latency", TABLE, command="python -m bench latency --quick", commit="deadbeef1+",
                         day="2026-12-07") + "\n")
    found = read_blocks(doc.read_text())["latency"]
    assert (found.name, found.body, found.command, found.commit, found.day) == (
        "latency", TABLE, "python -m bench latency --quick", "deadbeef1+", "2026-12-07")
    publish(doc, [Table("latency", TABLE, "## L")], "qa-eval eval/fresh.jsonl --index IDX")
    again = read_blocks(doc.read_text())["latency"]
    assert (again.command, again.commit, again.body) == ("qa-eval eval/fresh.jsonl --index IDX", "abc1234", TABLE)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", again.day)


@pytest.mark.parametrize(("text", "message"), [
    ("<!-- table: latency -->\n| a |\n", "block 'latency' has no closing marker"),
    (block("latency", "| a |") + "\n" + block("latency", "| b |") + "\n", "duplicate block name 'latency'"),
    ("<!-- table: latency -->\n| a |\n" + block("ingest", "| b |"), "opens inside block 'latency'"),
    ("| a |\n<!-- /table: latency -->\n", "closing marker for 'latency' without its opening marker"),
    ("<!-- table: latency -->\n| a |\n<!-- /table: latency -->\n", "does not end with a provenance line"),
    ("<!-- table: Latency_1 -->\n| a |\n<!-- /table: Latency_1 -->\n", "not lowercase"),
])
def test_a_malformed_block_is_a_clear_error_and_nothing_is_written(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        read_blocks(text)
    doc = tmp_path / "doc.md"
    doc.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        publish(doc, [Table("latency", TABLE, "## L")], COMMAND)
    assert doc.read_text() == text


@pytest.mark.parametrize(("tables", "cmd", "message"), [
    ([Table("Bad Name", TABLE, "## x")], COMMAND, "not lowercase"),
    ([Table("a", TABLE, "## x"), Table("a", TABLE, "## y")], COMMAND, "given twice"),
    ([Table("a", TABLE, "## x")], "python -m bench no-such-scenario", "not a registered scenario"),
    ([Table("a", TABLE, "## x")], "python bench/run.py", "neither"),
])
def test_publish_refuses_bad_tables_and_commands(tmp_path: Path, tables: list[Table], cmd: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        publish(tmp_path / "doc.md", tables, cmd)
    assert not (tmp_path / "doc.md").exists()


def test_current_commit_is_a_short_hash_with_plus_when_dirty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real one
    assert re.fullmatch(r"[0-9a-f]{7,12}\+?", current_commit())


def test_the_provenance_command_leaves_out_where_the_tables_go() -> None:
    assert command("latency", ["--sizes", "300", "--publish", "--doc", "/tmp/x.md"]) == "python -m bench latency --sizes 300"
    assert command("quality", ["--doc=/tmp/x.md", "--systems", "bm25,hybrid"]) == "python -m bench quality --systems bm25,hybrid"
    assert command("eval", []) == "python -m bench eval"
    assert command("eval", ["--index", "/tmp/idx", "--publish"]) == "python -m bench eval --index IDX"
    assert command("judged", ["--index=/tmp/idx"]) == "python -m bench judged --index=IDX"
    assert command("eval", ["--squad-index", "/tmp/s"]) == "python -m bench eval --squad-index IDX"
    # nor a copy of the results, a scratch folder, or bench.run's options that pick scenarios
    assert command("quality", ["--work", "/tmp/w", "--json=/tmp/r.json", "--model", "m"]) == (
        "python -m bench quality --model m")
    assert command("latency", ["--only", "latency", "--sizes", "300", "--results=/tmp/r.json", "--render-only"]) == (
        "python -m bench latency --sizes 300")


def test_markdown_table_gives_a_header_a_rule_and_a_line_per_row() -> None:
    assert markdown_table(["a", "b"], [[1, "x"], [2.5, None], ["", [1, 2]]]) == (
        "| a | b |\n| --- | --- |\n| 1 | x |\n| 2.5 | – |\n| | [1, 2] |")
    assert markdown_table(["", "judged"], iter([])) == "| | judged |\n| --- | --- |"  # rows: any iterable


def test_print_and_publish_prints_and_writes_only_with_publish(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc, tables = tmp_path / "doc.md", [Table("latency", TABLE, "## L"), Table("swap", "| s |", "## S")]
    print_and_publish(argparse.Namespace(publish=False, doc=doc), "latency", ["--sizes", "300"], tables)
    assert capsys.readouterr().out == TABLE + "\n\n| s |\n" and not doc.exists()
    print_and_publish(argparse.Namespace(publish=True, doc=doc), "latency", ["--sizes", "300", "--publish"], tables)
    assert capsys.readouterr().out.endswith(f"published latency, swap into {doc}\n")
    blocks = read_blocks(doc.read_text())
    assert [(b.name, b.command) for b in blocks.values()] == [("latency", COMMAND), ("swap", COMMAND)]
