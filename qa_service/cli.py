"""`qa-serve --index DIR --articles DIR --host H --port P`, and `qa-mcp --index DIR` (the
archive as an MCP server over stdio, for desktop assistants)."""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import sys
from pathlib import Path

import anyio
import uvicorn

from index.cli import run_cli
from index.dense import set_query_threads
from index.encoder import make_encoder
from index.manifest import current_version_name
from qa_service.app import create_app
from qa_service.holder import IndexHolder
from qa_service.mcp_server import archive_server
from qa_service.settings import ServiceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qa-serve",
        description="Serve the question-answering API and chat widget. Other settings come from "
        "QA_* environment variables (QA_ADMIN_TOKEN, QA_CORS_ORIGINS, ...; see the README).",
    )
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--articles", type=Path, help="articles folder for admin routes (default: $QA_ARTICLES_DIR or data/articles)")
    parser.add_argument("--host", help="address to listen on (default: $QA_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $QA_PORT or 8000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    overrides = {"index_dir": args.index, "articles_dir": args.articles, "host": args.host, "port": args.port}

    def body() -> int:
        settings = ServiceSettings(**{k: v for k, v in overrides.items() if v is not None})
        # One thread per question for torch, FAISS and ONNX Runtime (QA_QUERY_THREADS; the
        # encoder is given the same count in create_app). Their pools
        # otherwise spin a thread on every core for each question while other requests (and,
        # on a small machine, other processes) want the same cores: on 2 shared cores a
        # question's embedding took 163 ms median with 2 threads and 23 ms with 1, a flat
        # FAISS search of 10k vectors 44 ms and 0.36 ms (docs/history/benchmarks-2026-11-to-12.md).
        set_query_threads(settings.query_threads)
        if current_version_name(settings.index_dir) is None:
            print(
                f"qa-serve: warning: no index at {settings.index_dir} yet; /ask answers 503 until one is "
                f"built (qa-ingest {settings.articles_dir} --index {settings.index_dir}, or POST /admin/reindex)",
                file=sys.stderr,
            )
        # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1
        # (its default), so any local process could pick its address; create_app reads the
        # header from QA_TRUSTED_PROXIES only. An idle keep-alive connection is closed after
        # 5 s, and a request's unfinished headers may hold 16 KiB (more is a 400). uvicorn has
        # no timeout for headers that never finish, nor for a body (the app times out a
        # stalled body itself, QA_BODY_TIMEOUT_S): a public qa-serve belongs behind a proxy.
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                    log_config=_log_config(), timeout_graceful_shutdown=30, proxy_headers=False,
                    timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024)
        return 0

    return run_cli("qa-serve", body)


class PathOnly(logging.Filter):
    """The access log's path without its query string: `GET /ask?q=` carries the reader's
    question, and the line the reader's address."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:  # uvicorn's access line
            client, method, path, version, status = record.args
            record.args = (client, method, str(path).partition("?")[0], version, status)
        return True


def _log_config() -> dict:
    """uvicorn's own logging setup, with the access log's handler filtered by PathOnly."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"path_only": {"()": PathOnly}}
    config["handlers"]["access"]["filters"] = ["path_only"]
    return config


def mcp_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qa-mcp",
        description="The archive as a Model Context Protocol server over stdio, for desktop "
        "assistants: the tool ask_archive and a resource per article. It serves the index's "
        "current version and picks up new ones as qa-ingest publishes them.",
    )
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    args = parser.parse_args(argv)
    # stdout carries the protocol: every log line, and anything a library prints, goes to stderr.
    logging.basicConfig(level=logging.WARNING, format="qa-mcp: %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)

    def body() -> int:
        settings = ServiceSettings(**({"index_dir": args.index} if args.index else {}))
        set_query_threads(settings.query_threads)
        with contextlib.redirect_stdout(sys.stderr):
            encoder = make_encoder(settings, threads=settings.query_threads)
            encoder.encode_query("warm-up")
            holder = IndexHolder(settings, encoder)
            holder.refresh()
        if holder.searcher is None:
            print(f"qa-mcp: warning: {holder.last_error}; the tool answers with that until one is built",
                  file=sys.stderr)
        holder.start_watching(settings.reload_interval_s)
        server = archive_server(lambda: holder.searcher, max_question_chars=settings.max_question_chars,
                                default_top_k=settings.top_k)
        try:
            anyio.run(server.run_stdio_async)
        finally:
            holder.stop()
        return 0

    return run_cli("qa-mcp", body)


if __name__ == "__main__":
    sys.exit(main())
