"""Published tables: a figure in docs/*.md or README.md lives in a named block that the
scenario which measured it rewrites, leaving the rest of the file as it was, byte for byte.

    <!-- table: NAME -->
    ...markdown: one table, optionally a short paragraph under it...

    Measured by `python -m bench SCENARIO ARGS` at commit `abc1234` on 2026-12-07.
    <!-- /table: NAME -->

NAME is unique within its file (lowercase `a-z0-9-`). The last non-empty line before the
closing marker is the provenance line: the command in backticks, the commit (a 7-to-12-hex
short hash, `+` when the tree had uncommitted changes) and the UTC date. Markers count only at
the start of a line and outside fenced code blocks, so a document may show the format.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from index.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
OPENER = re.compile(r"<!-- table: (?P<name>\S+) -->")
CLOSER = re.compile(r"<!-- /table: (?P<name>\S+) -->")
PROVENANCE = re.compile(
    r"Measured by `(?P<command>[^`]+)` at commit `(?P<commit>[0-9a-f]{7,12}\+?)` on (?P<day>\d{4}-\d{2}-\d{2})\."
)
FENCE = re.compile(r"(```|~~~)")
INDEX_OPTION = re.compile(r"--(?:[a-z0-9]+-)*index")  # --index, --squad-index: a folder shown as IDX


@dataclass(frozen=True)
class Table:
    name: str  # block name
    body: str  # markdown without the provenance line
    heading: str  # "## ..." heading used only when the block is new (appended at the end)


@dataclass(frozen=True)
class Block:
    name: str
    body: str  # the markdown between the opening marker and the provenance line, blank lines trimmed
    command: str
    commit: str
    day: str


@dataclass(frozen=True)
class _Span:
    block: Block
    start: int  # offset of the opening marker's line
    end: int  # offset just after the closing marker (its line break excluded)


def _lines(text: str):
    """(offset, line without its line break, inside a fenced code block) for each line."""
    offset, fenced = 0, False
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        if FENCE.match(line):
            fenced = not fenced
            yield offset, line, True
        else:
            yield offset, line, fenced
        offset += len(raw)


def _parse_block(name: str, inner: list[str], line_no: int) -> Block:
    """The block `name` from the lines between its markers (`line_no`: its opener's, 1-based)."""
    content = list(inner)
    while content and not content[-1].strip():
        content.pop()
    match = PROVENANCE.fullmatch(content[-1].strip()) if content else None
    if match is None:
        raise ValueError(f"line {line_no}: block {name!r} does not end with a provenance line "
                         "(Measured by `COMMAND` at commit `HASH` on YYYY-MM-DD.)")
    body = "\n".join(content[:-1]).strip("\n").rstrip()
    return Block(name, body, match["command"], match["commit"], match["day"])


def _spans(text: str) -> list[_Span]:
    """Every block of `text`, in order; ValueError for a malformed one."""
    spans: list[_Span] = []
    seen: set[str] = set()
    open_name, open_at, open_line, inner = None, 0, 0, []
    for number, (offset, line, fenced) in enumerate(_lines(text), start=1):
        opener, closer = (None, None) if fenced else (OPENER.fullmatch(line), CLOSER.fullmatch(line))
        if opener:
            name = opener["name"]
            if open_name is not None:
                raise ValueError(f"line {number}: block {name!r} opens inside block {open_name!r} "
                                 f"(line {open_line}), which has no closing marker")
            if not NAME.fullmatch(name):
                raise ValueError(f"line {number}: block name {name!r} is not lowercase a-z0-9-")
            if name in seen:
                raise ValueError(f"line {number}: duplicate block name {name!r}")
            seen.add(name)
            open_name, open_at, open_line, inner = name, offset, number, []
        elif closer:
            if closer["name"] != open_name:
                raise ValueError(f"line {number}: closing marker for {closer['name']!r} without its "
                                 "opening marker" + (f" (block {open_name!r} is open)" if open_name else ""))
            block = _parse_block(open_name, inner, open_line)
            spans.append(_Span(block, open_at, offset + len(line)))
            open_name = None
        elif open_name is not None:
            inner.append(line)
    if open_name is not None:
        raise ValueError(f"line {open_line}: block {open_name!r} has no closing marker")
    return spans


def read_blocks(text: str) -> dict[str, Block]:
    """The named blocks of a document's text; ValueError for a malformed block (no closing
    marker, a duplicate or invalid name, no provenance line)."""
    return {span.block.name: span.block for span in _spans(text)}


def markdown_table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table: the header line, a `| --- |` rule and a line per row, each cell through
    str() (None shown as "–", an empty cell as `| |`); no final line break."""
    def line(cells: Iterable[object]) -> str:
        texts = ("–" if cell is None else str(cell) for cell in cells)
        return "|" + "".join(f" {text} |" if text else " |" for text in texts)

    return "\n".join([line(headers), line("---" for _ in headers), *(line(row) for row in rows)])


def render_block(table: Table, command: str, commit: str, day: str) -> str:
    """The block's text, from its opening marker to its closing marker (no final line break)."""
    provenance = f"Measured by `{command}` at commit `{commit}` on {day}."
    if not PROVENANCE.fullmatch(provenance):
        raise ValueError(f"not a provenance line: {provenance!r}")
    body = table.body.strip("\n").rstrip()
    return f"<!-- table: {table.name} -->\n{body}\n\n{provenance}\n<!-- /table: {table.name} -->"


def _check(tables: Sequence[Table], command: str) -> None:
    names = [table.name for table in tables]
    for name in names:
        if not NAME.fullmatch(name):
            raise ValueError(f"block name {name!r} is not lowercase a-z0-9-")
    if len(set(names)) != len(names):
        raise ValueError(f"a block name given twice: {names}")
    words = command.split()
    if words[:3] == ["python", "-m", "bench"]:
        from bench.scenarios import SCENARIOS

        if len(words) < 4 or words[3] not in SCENARIOS:
            raise ValueError(f"{command!r}: not a registered scenario (bench/scenarios.py)")
    elif not (words and words[0].startswith("qa-")):
        raise ValueError(f"{command!r}: neither `python -m bench SCENARIO ...` nor a qa-* command")


def publish(doc: Path, tables: Sequence[Table], command: str, *, commit: str | None = None,
            day: str | None = None) -> None:
    """Write `tables` into `doc`: each named block replaced in place (the rest of the file
    untouched, byte for byte), a new one appended at the end under its heading; written
    atomically. The provenance line gives `command`, current_commit() and today's UTC date
    (`commit` and `day` instead: figures measured earlier, published again)."""
    _check(tables, command)
    doc = Path(doc)
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    spans = {span.block.name: span for span in _spans(text)}
    commit = commit or current_commit()
    day = day or datetime.now(timezone.utc).date().isoformat()
    replaced = sorted(((spans[t.name].start, spans[t.name].end, t) for t in tables if t.name in spans),
                      key=lambda item: item[0])
    out, at = [], 0
    for start, end, table in replaced:
        out += [text[at:start], render_block(table, command, commit, day)]
        at = end
    out.append(text[at:])
    text = "".join(out)
    for table in (t for t in tables if t.name not in spans):
        if text and not text.endswith("\n"):
            text += "\n"
        heading = f"{table.heading.strip()}\n\n" if table.heading.strip() else ""
        text += ("\n" if text else "") + heading + render_block(table, command, commit, day) + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(doc, text)


def _git(*args: str, root: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: not a checkout? ({error})") from error
    return done.stdout


def current_commit(root: Path = ROOT) -> str:
    """The short hash of HEAD, with `+` when the tree has uncommitted changes that can change a
    figure: changes to Markdown files and to docs/ (what publishing itself writes) do not count."""
    commit = _git("rev-parse", "--short=7", "HEAD", root=root).strip()
    dirty = False
    for entry in _git("status", "--porcelain", "--untracked-files=normal", root=root).splitlines():
        path = entry[3:].split(" -> ")[-1].strip('"')
        if not (path.endswith(".md") or path.startswith("docs/")):
            dirty = True
            break
    return commit + ("+" if dirty else "")


# Options that say where figures go (or a scratch folder), or which of bench.run's scenarios
# run: not what is measured.
NOT_MEASURED_VALUED = ("--doc", "--only", "--results", "--json", "--work")
NOT_MEASURED_FLAGS = ("--publish", "--render-only")


def command(scenario: str, argv: Sequence[str] | None) -> str:
    """The provenance command of `scenario` run with `argv` (the command line's arguments when
    None): the options that do not shape a figure left out (--publish, --doc, --json, --work;
    bench.run's --only, --results, --render-only), an index folder (--index, --squad-index) written IDX (a
    path on the machine that ran it says nothing to the next reader): the command that
    measures again."""
    args = list(sys.argv[1:] if argv is None else argv)
    rest, skip = [], False
    for arg in args:
        option = arg.partition("=")[0]
        if skip:
            skip = False
        elif arg in NOT_MEASURED_VALUED:
            skip = True
        elif rest and INDEX_OPTION.fullmatch(rest[-1]):
            rest.append("IDX")
        elif INDEX_OPTION.fullmatch(option) and "=" in arg:
            rest.append(option + "=IDX")
        elif arg not in NOT_MEASURED_FLAGS and option not in NOT_MEASURED_VALUED:
            rest.append(arg)
    return " ".join(["python -m bench", scenario, *([shlex.join(rest)] if rest else [])])


def add_publish_arguments(parser: argparse.ArgumentParser, scenario: str) -> None:
    """--publish, and --doc: the file it writes into (by default the scenario's own)."""
    from bench.scenarios import SCENARIOS

    default = ROOT / SCENARIOS[scenario].doc
    parser.add_argument("--publish", action="store_true",
                        help=f"write the tables into their blocks of {SCENARIOS[scenario].doc}")
    parser.add_argument("--doc", type=Path, default=default, help="with --publish: the file to write into")


def print_and_publish(args: argparse.Namespace, scenario: str, argv: Sequence[str] | None,
                      tables: Sequence[Table]) -> None:
    """Print the tables' markdown; with --publish (add_publish_arguments) also write them into
    --doc under the provenance command of `scenario` run with `argv`."""
    print("\n\n".join(table.body for table in tables))
    if args.publish:
        publish(args.doc, tables, command(scenario, argv))
        print(f"published {', '.join(table.name for table in tables)} into {args.doc}")
