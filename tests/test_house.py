"""The house rules a newcomer relies on, checked on the repository itself: ARCHITECTURE names
every module, every published figure says which command and commit produced it, and no
function or module outgrows one reading."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bench.publish import read_blocks
from bench.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("qa_service", "index", "ingest", "bench", "scripts")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
CLIS = ("qa-eval", "qa-calibrate", "qa-ingest", "qa-testset", "qa-judgments")


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if p.name != "__init__.py")


def published_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_architecture_names_every_module():
    architecture = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = [str(p.relative_to(ROOT)) for p in modules() if f"`{p.relative_to(ROOT)}`" not in architecture]
    assert not missing, f"docs/ARCHITECTURE.md does not name: {missing}"


def test_architecture_cites_only_files_that_exist():
    architecture = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    cited = set(re.findall(r"`((?:qa_service|index|ingest|bench|scripts|tests)/[\w/.-]+\.(?:py|sh|json|jsonl))`", architecture))
    assert cited, "the pattern should find the maps' paths"
    assert sorted(p for p in cited if not (ROOT / p).exists()) == []


def test_every_scenario_is_a_module_with_a_main():
    import importlib

    for name, scenario in SCENARIOS.items():
        module = importlib.import_module(scenario.module)
        assert callable(getattr(module, "main", None)), f"scenario {name}: {scenario.module} has no main"


@pytest.mark.parametrize("doc", published_docs(), ids=lambda p: p.name)
def test_every_published_table_names_its_command_and_commit(doc):
    blocks = read_blocks(doc.read_text())
    for block in blocks.values():
        words = block.command.split()
        if words[:3] == ["python", "-m", "bench"]:
            assert len(words) > 3 and words[3] in SCENARIOS, f"{doc.name} {block.name}: {block.command}"
        else:
            assert words[0] in CLIS, f"{doc.name} {block.name}: {block.command} is neither a scenario nor a CLI"
        assert re.fullmatch(r"[0-9a-f]{7,12}\+?", block.commit), f"{doc.name} {block.name}: {block.commit}"
        assert block.commit.rstrip("+") != "0000000", f"{doc.name} {block.name} was never generated"


def test_the_figure_pages_are_tables_of_figures():
    for name in ("quality.md", "benchmarks.md"):
        assert read_blocks((ROOT / "docs" / name).read_text()), f"docs/{name} has no published tables"


def _too_long(path: Path) -> list[str]:
    source = path.read_text()
    found = [f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines"] if source.count("\n") > MAX_MODULE_LINES else []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    return found


def test_no_function_or_module_outgrows_one_reading():
    assert [f for p in modules() for f in _too_long(p)] == []
