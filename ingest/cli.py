"""`qa-ingest ARTICLES_DIR --index INDEX_DIR [--json]`"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from index.cli import run_cli
from index.settings import Settings
from ingest.pipeline import IngestReport, run_ingest


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa-ingest",
        description="Turn a folder of articles (.txt, .md, .html, .jsonl) into a searchable "
        "index, embedding only what changed since the last run.",
    )
    parser.add_argument("articles_dir", type=Path, help="folder of articles")
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--model", help="sentence-transformers model name or path (default: $QA_MODEL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the result")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--optimize", action="store_true", help="afterwards, merge every segment into one")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("ingest").setLevel(logging.INFO)
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
    overrides = {"index_dir": args.index, "model": args.model}

    def body() -> int:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        report = run_ingest(
            args.articles_dir, settings, progress=False if args.quiet else None, optimize=args.optimize
        )
        print(json.dumps(report.to_json()) if args.json else _summary(report))
        return 0

    return run_cli("qa-ingest", body)


def _summary(report: IngestReport) -> str:
    lines = [
        f"articles: {len(report.added)} added, {len(report.changed)} changed, "
        f"{len(report.removed)} removed, {len(report.unchanged)} unchanged"
        + (f", {len(report.skipped)} files skipped" if report.skipped else "")
    ]
    if report.published:
        lines.append(f"chunks: {report.chunks} in the index, {report.chunks_embedded} embedded")
        merged = f" after {report.merges} merge{'s' if report.merges > 1 else ''}" if report.merges else ""
        lines.append(f"segments: {report.segments}{merged}")
        lines.append(f"published version {report.version} in {report.seconds:.1f} s")
    else:
        lines.append(
            f"index is up to date: 0 chunks embedded, version {report.version} "
            f"({report.chunks} chunks, segments: {report.segments}) stays in service"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
