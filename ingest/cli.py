"""`qa-ingest ARTICLES_DIR --index INDEX_DIR [--json]`: bring the index in line with a folder.
`qa-ingest FILE... [--remove ID]... --index INDEX_DIR`: add or replace the articles in the
files named, remove the ids named, and read nothing else.
`qa-sync URL... --articles DIR [--ingest --index INDEX_DIR]`: bring a folder in line with a
site's feeds or sitemaps (ingest/sync.py), then optionally the index with the folder."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from index.cli import run_cli
from index.encoder import TextEncoder, make_encoder
from index.errors import IngestError
from index.settings import Settings
from ingest.pipeline import run_ingest, run_update
from ingest.report import IngestReport
from ingest.sync import SyncOptions, SyncReport, sync


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa-ingest",
        description="Turn a folder of articles (.txt, .md, .html, .jsonl) into a searchable "
        "index, embedding only what changed since the last run.",
    )
    parser.add_argument(
        "articles", type=Path, nargs="*",
        help="folder of articles (the index follows it: new, changed and removed files), or "
        "article files to add or replace without reading the rest of the folder",
    )
    parser.add_argument(
        "--remove", action="append", default=[], metavar="ID",
        help="remove this article from the index (repeatable; with files or alone)",
    )
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--model", help="sentence-transformers model name or path (default: $QA_MODEL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the result")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--optimize", action="store_true", help="afterwards, merge every segment into one")
    parser.add_argument(
        "--engine", choices=["local", "ray"], default="local",
        help="where a folder run reads, chunks and embeds: in this process (default) or on Ray "
        "(the 'distributed' extra)",
    )
    parser.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default: start a local one)")
    parser.add_argument(
        "--release-encoders", action="store_true",
        help="with --engine ray: stop the cluster's encoder actors when the run ends (by default "
        "they stay, the model loaded, for the next run)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("ingest").setLevel(logging.INFO)
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
    overrides = {"index_dir": args.index, "model": args.model}

    def body() -> int:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        progress = False if args.quiet else None
        missing = [str(p) for p in args.articles if not p.exists()]
        if missing:
            raise IngestError(f"{', '.join(missing)} does not exist (give an articles folder or article files)")
        folders = [p for p in args.articles if p.is_dir()]
        if folders and (len(args.articles) > 1 or args.remove):
            raise IngestError("give one articles folder, or article files and --remove ids, not both")
        if args.engine == "local" and (args.ray_address or args.release_encoders):
            raise IngestError(f"{'--ray-address' if args.ray_address else '--release-encoders'} needs --engine ray")
        # The index's own encoder: its question path is exported into the index (below).
        encoder = make_encoder(settings)
        if folders:
            report = run_ingest(folders[0], settings, encoder, progress=progress, optimize=args.optimize,
                                ray=_ray_options(args))
        elif args.engine == "ray":
            raise IngestError("--engine ray is for folder runs; an update naming its files runs here")
        elif args.articles or args.remove:
            report = run_update(args.articles, settings, encoder, remove=args.remove, progress=progress,
                                optimize=args.optimize)
        else:
            raise IngestError("give an articles folder, article files, or --remove ID")
        _prepare_question_path(report, encoder)
        print(json.dumps(report.to_json()) if args.json else _summary(report))
        return 0

    return run_cli("qa-ingest", body)


def _prepare_question_path(report: IngestReport, encoder: TextEncoder) -> None:
    """After a publish, the ONNX question path into the index's cache folder (once per model;
    nothing when questions are embedded with torch), so that servers of a read-only copy of
    the index find it there."""
    if report.published:
        encoder.prepare_question_path()


def _sync_parser() -> argparse.ArgumentParser:
    defaults = SyncOptions()
    parser = argparse.ArgumentParser(
        prog="qa-sync",
        description="Fetch the pages a site's RSS/Atom feeds or sitemaps list into an articles "
        "folder (conditional requests for pages fetched before), and optionally ingest it.",
    )
    parser.add_argument("urls", nargs="+", metavar="URL", help="a feed or sitemap (or sitemap index) URL")
    parser.add_argument("--articles", type=Path, required=True, help="the articles folder to write")
    parser.add_argument("--ingest", action="store_true", help="afterwards, ingest the folder (as qa-ingest DIR)")
    parser.add_argument("--index", type=Path, help="with --ingest: index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--prune", action="store_true", help="delete the pages no source lists any more")
    parser.add_argument("--rate", type=float, default=defaults.rate_per_s, help="requests per second to one host (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds per request (default %(default)s)")
    parser.add_argument("--max-bytes", type=int, default=defaults.max_bytes, help="largest page fetched (default %(default)s)")
    parser.add_argument(
        "--allow-private", action="store_true",
        help="also fetch hosts on loopback, private, link-local or other non-public addresses, "
        "e.g. an intranet site (default: $QA_SYNC_ALLOW_PRIVATE, else only the public internet)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object with the result")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def sync_main(argv: list[str] | None = None) -> int:
    args = _sync_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("ingest").setLevel(logging.INFO)
    if args.index and not args.ingest:
        print("qa-sync: error: --index needs --ingest", file=sys.stderr)
        return 2
    if args.rate <= 0 or args.timeout <= 0 or args.max_bytes <= 0:
        print("qa-sync: error: --rate, --timeout and --max-bytes must be positive", file=sys.stderr)
        return 2

    def body() -> int:
        allow_private = args.allow_private or Settings().sync_allow_private
        options = SyncOptions(timeout_s=args.timeout, max_bytes=args.max_bytes, rate_per_s=args.rate, prune=args.prune,
                              allow_private=allow_private)
        report = sync(args.urls, args.articles, options, progress=None if args.quiet else _SyncProgress())
        print(json.dumps(report.to_json()) if args.json else _sync_summary(report))
        if args.ingest:
            settings = Settings(**({"index_dir": args.index} if args.index else {}))
            encoder = make_encoder(settings)
            ingested = run_ingest(args.articles, settings, encoder, progress=False if args.quiet or args.json else None)
            _prepare_question_path(ingested, encoder)
            print(json.dumps({"ingest": ingested.to_json()}) if args.json else _summary(ingested))
        return 1 if report.sources_failed else 0

    return run_cli("qa-sync", body)


class _SyncProgress:
    """A line on stderr at most once a second, and at the end."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last >= 1:
            self._last = now
            print(f"qa-sync: {done}/{total} pages", file=sys.stderr, flush=True)


def _sync_summary(report: SyncReport) -> str:
    lines = [
        f"pages: {len(report.new)} new, {len(report.changed)} changed, {len(report.unchanged)} "
        f"unchanged, {len(report.failed)} failed"
        + (f", {len(report.pruned)} pruned" if report.pruned else "")
        + (f", {len(report.unlisted)} no longer listed (kept; --prune removes them)" if report.unlisted else "")
    ]
    lines += [f"  source failed: {f.url}: {f.reason}" for f in report.sources_failed]
    lines += [f"  failed: {f.url}: {f.reason}" for f in report.failed]
    return "\n".join(lines)


def _ray_options(args: argparse.Namespace):
    if args.engine != "ray":
        return None
    try:
        import ray  # noqa: F401  (installed?)

        from ingest.ray_engine import RayOptions
    except ImportError as exc:
        raise IngestError(f"--engine ray needs Ray: pip install -e '.[distributed]' ({exc})") from exc
    return RayOptions(address=args.ray_address, release_encoders=args.release_encoders)


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
