"""Render benchmark results (bench/run.py's JSON) as docs/benchmarks.md and a latency plot."""

from __future__ import annotations

from pathlib import Path

COMMANDS = """```bash
bash scripts/setup.sh                                  # installs .[test,bench]
.venv/bin/python -m bench.run                          # every scenario, full sizes -> docs/benchmarks.md + PNG
.venv/bin/python -m bench.run --only latency,recall --sizes 10000,100000,1000000
.venv/bin/python -m bench.run --only incremental --articles 1000,10000,100000
.venv/bin/python -m bench.run --only ingest --docs 400
.venv/bin/python -m bench.run --only langchain
.venv/bin/python -m bench.run --render-only            # re-render from $QA_BENCH_CACHE/results.json
```"""


def _or_dash(value: object) -> object:
    return "–" if value is None else value


def _table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}"


def plot(results: dict, path: Path) -> bool:
    latency = results.get("latency") or []
    if not latency:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for system, color in (("ours", "tab:blue"), ("langchain", "tab:orange")):
        for clients in sorted({r["clients"] for r in latency if r["system"] == system}):
            rows = sorted((r for r in latency if (r["system"], r["clients"]) == (system, clients)),
                          key=lambda r: r["chunks"])
            x = [r["chunks"] for r in rows]
            style = {"linestyle": "-" if clients == 1 else "--", "color": color}
            ax.plot(x, [r["p50_ms"] for r in rows], marker="o", **style, label=f"{system} p50, {clients} client(s)")
            ax.plot(x, [r["p99_ms"] for r in rows], marker="^", alpha=0.5, **style, label=f"{system} p99, {clients} client(s)")
    floor = (results.get("query_embedding_ms") or {}).get("onnx_1")
    if floor:
        ax.axhline(floor, color="grey", linestyle=":", label=f"query embedding alone ({floor} ms)")
    ax.axhline(15, color="green", linewidth=0.8, label="target p50 15 ms")
    ax.axhline(50, color="red", linewidth=0.8, label="target p99 50 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("index size (chunks)")
    ax.set_ylabel("/ask latency over HTTP (ms)")
    ax.set_title("Query latency against index size")
    ax.legend(fontsize=6.5, ncol=2, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def render(results: dict, out: Path, quick: bool = False) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_name(out.stem + "-latency.png")
    has_plot = plot(results, png)
    m = results.get("machine", {})
    parts = [
        "# Benchmarks" + (" (quick run: tiny sizes, not figures)" if quick else ""),
        "",
        f"Run started {results.get('started', '?')}. Machine: {m.get('cpus')} CPU cores "
        f"({m.get('cpu_model')}), {m.get('memory_gb')} GB memory, Python {m.get('python')}; "
        f"load average (1, 5, 15 min) when the results were last saved: {m.get('load_at_start')}. "
        "Medians are reported, and latency runs are a fixed number of requests.",
        "",
        "## How to reproduce",
        "",
        COMMANDS,
        "",
    ]
    ingest, lc_ingest = results.get("ingest"), results.get("langchain_ingest")
    if ingest:
        parts += [
            "## 1. Ingest throughput (real text)",
            "",
            f"First {ingest['documents']} SciFact abstracts, fresh index and empty vector cache each run; "
            "`run_ingest` (what `qa-ingest` runs) end to end against `SentenceTransformer.encode` on "
            "the same chunk texts in the same process, alternating; medians.",
            "",
            _table(["chunks", "ingest chunks/s", "model encode chunks/s", "ratio (target ≥ 0.90)", "ingest runs (s)", "encode runs (s)"],
                   [[ingest["chunks"], ingest["ingest_chunks_per_s"], ingest["encode_chunks_per_s"], ingest["ratio"],
                     ingest["ingest_runs_s"], ingest["encode_runs_s"]]]),
            "",
        ]
    if results.get("incremental"):
        parts += [
            "## 2. Incremental add: one article into an existing index",
            "",
            "Existing articles synthetic (3 passages of ~550 characters of real SciFact sentences; vectors "
            "mixed from real embeddings, see `bench/common.py`), published with the real store code; the "
            "added article is a real sample-corpus article, embedded by the model. Named: the update names "
            "its article (`run_update`: `qa-ingest FILE`, `qa-ingest --remove ID`, POST and DELETE "
            "/articles). Folder: `run_ingest` reads and diffs the whole articles folder (`qa-ingest "
            "ARTICLES_DIR`, POST /admin/reindex). Medians of the runs; a dash: not run at that size.",
            "",
            _table(["articles", "chunks", "dense index", "chunks embedded", "embedding s",
                    "named: everything else s", "named: remove s", "folder: everything else s",
                    "folder: remove s", "bytes written per add", "per removal", "runs"],
                   [[r["articles"], r["chunks"], r["dense"], r["chunks_embedded"], r["named_embedding_s"],
                     r["named_other_s"], r["named_remove_s"], _or_dash(r["other_s"]), _or_dash(r["remove_s"]),
                     r["named_bytes_written"], r["named_remove_bytes_written"], r["runs"]]
                    for r in results["incremental"]]),
            "",
        ]
    if results.get("recall"):
        parts += [
            "## Dense index choice: recall@10 against exact search",
            "",
            "`QA_DENSE_INDEX=auto` (default): flat (exact) below `QA_DENSE_ANN_MIN_CHUNKS` (50,000) chunks, "
            "else IVF over 8-bit scalar-quantised vectors (lists ≈ 2·√n, a power of two; nprobe = lists/32, at least 64). "
            "All SciFact claims as questions, embedded by the model; truth = exact inner-product search over "
            "the same vectors (vectors.npy).",
            "",
            _table(["chunks", "dense index", "questions", "recall@10 (target ≥ 0.95)", "ANN search ms (p50)", "exact flat search ms (p50)"],
                   [[r["chunks"], r["dense"], r["queries"], r["recall_at_10"], r["ann_ms_p50"], r["exact_ms_p50"]]
                    for r in sorted(results["recall"], key=lambda r: r["chunks"])]),
            "",
        ]
    latency = results.get("latency") or []
    if latency:
        emb = results.get("query_embedding_ms") or {}
        parts += [
            "## 3 and 4. Query latency over HTTP and serving memory",
            "",
            "`qa-serve` (uvicorn, 127.0.0.1) on a synthetic index of each size (texts and vectors as above); "
            "a load generator sends a fixed number of `GET /ask?q=` (SciFact claims, hybrid search, top 5) "
            "from concurrent clients after a 30-request warm-up. Resident memory of the server process is read "
            "from /proc after the run (RSS; of which anonymous; peak including loading).",
            "",
            _table(["system", "chunks", "dense", "requests", "clients", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s", "RSS MB", "anon MB", "peak MB", "bytes/chunk", "load s"],
                   [[r["system"], r["chunks"], r["dense"], r["requests"], r["clients"], r["errors"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                     r["requests_per_s"], r["rss_mb"], r["rss_anon_mb"], r["rss_peak_mb"], r["bytes_per_chunk"], r["load_s"]]
                    for r in sorted(latency, key=lambda r: (r["system"], r["clients"], r["chunks"]))]),
            "",
            "Query embedding alone (one SciFact claim, median of 200), the floor of a search: "
            f"ONNX Runtime (what `qa-serve` uses) {emb.get('onnx_1', '–')} ms with 1 thread, {emb.get('onnx_2', '–')} ms "
            f"with 2; torch {emb.get('torch_1', '–')} ms with 1 thread, {emb.get('torch_2', '–')} ms with 2.",
            "",
        ]
        if has_plot:
            parts += [f"![latency against index size]({png.name})", ""]
    if lc_ingest or results.get("langchain_rebuild"):
        parts += ["## 5. Side by side with the plain LangChain pipeline", ""]
        parts += ["RecursiveCharacterTextSplitter(600, 100) → HuggingFaceEmbeddings (same model, same package path) → "
                  "langchain-community FAISS (flat), full rebuild on add (`bench/langchain_baseline.py`). "
                  "Ratios are ours / LangChain for throughput, LangChain / ours for times and memory: above 1 means ours is ahead.", ""]
        rows = []
        if lc_ingest and ingest:
            rows.append(["ingest chunks/s (SciFact)", ingest["ingest_chunks_per_s"], lc_ingest["chunks_per_s"],
                         _ratio(ingest["ingest_chunks_per_s"], lc_ingest["chunks_per_s"])])
        for lc in results.get("langchain_rebuild") or []:
            ours = next((r for r in results.get("incremental") or [] if r["articles"] == lc["articles"]), None)
            lc_total = lc["embed_s_projected"] + (lc["index_s"] or 0)
            label = f"add one article to {lc['articles']:,} articles (s)"
            rows.append([label, ours and ours["named_total_s"], f"{lc_total:.1f} (embed {lc['embed_s_projected']} projected + index {lc['index_s']} measured)",
                         _ratio(lc_total, ours and ours["named_total_s"])])
        for r in sorted((x for x in latency if x["system"] == "langchain"), key=lambda x: (x["clients"], x["chunks"])):
            ours = next((x for x in latency if (x["system"], x["chunks"], x["clients"]) == ("ours", r["chunks"], r["clients"])), None)
            if ours:
                at = f"at {r['chunks']:,} chunks, {r['clients']} client(s)"
                for key, name in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("rss_mb", "RSS MB")):
                    rows.append([f"{name} {at}", ours[key], r[key], _ratio(r[key], ours[key])])
                rows.append([f"req/s {at}", ours["requests_per_s"], r["requests_per_s"],
                             _ratio(ours["requests_per_s"], r["requests_per_s"])])
        parts += [_table(["figure", "ours", "LangChain", "ratio (>1: ours ahead)"], rows), ""]
        parts += ["LangChain's full rebuild re-embeds every chunk: its embedding time is projected from its measured "
                  "ingest rate (running it at 100k articles would take hours on two cores); the FAISS.from_embeddings "
                  "and save part is measured on the synthetic texts and vectors.", ""]
    if results.get("notes"):
        parts += ["## Notes", "", results["notes"], ""]
    out.write_text("\n".join(parts), encoding="utf-8")
