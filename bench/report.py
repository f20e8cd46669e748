"""bench.run's results (its JSON) as tables, one published block each in docs/benchmarks.md,
and the latency plot beside it.

    scenario      block               what
    ingest        ingest-throughput   ingest against the model's own encode
    incremental   incremental-add     one article added and removed, by index size
    recall        ann-recall          the dense index's recall@10 against exact search
    latency       latency             /ask over HTTP and serving memory (and the plot)
    langchain     langchain           ours against the plain LangChain pipeline
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.publish import Table, markdown_table

def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}"


def machine_note(results: dict, scenario: str) -> str:
    """The machine the scenario's figures were measured on (the last run's when it has none)."""
    m = (results.get("measured", {}).get(scenario) or {}).get("machine") or results.get("machine") or {}
    return (f"Machine: {m.get('cpus')} CPU cores ({m.get('cpu_model')}), {m.get('memory_gb')} GB memory, "
            f"Python {m.get('python')}; load average (1, 5, 15 min) when measured: {m.get('load_at_start')}.")


def ingest_table(results: dict) -> str | None:
    ingest = results.get("ingest")
    if not ingest:
        return None
    table = markdown_table(
        ["chunks", "ingest chunks/s", "model encode chunks/s", "ratio (target ≥ 0.90)", "ingest runs (s)",
         "encode runs (s)"],
        [[ingest["chunks"], ingest["ingest_chunks_per_s"], ingest["encode_chunks_per_s"], ingest["ratio"],
          ingest["ingest_runs_s"], ingest["encode_runs_s"]]])
    return (f"{table}\n\nFirst {ingest['documents']} SciFact abstracts, fresh index and empty vector cache each "
            "run: `run_ingest` (what `qa-ingest` runs) end to end against `SentenceTransformer.encode` on the "
            "same chunk texts in the same process, alternating; medians.")


def incremental_table(results: dict) -> str | None:
    if not results.get("incremental"):
        return None
    table = markdown_table(
        ["articles", "chunks", "dense index", "chunks embedded", "embedding s", "named: everything else s",
         "named: remove s", "folder: everything else s", "folder: remove s", "bytes written per add",
         "per removal", "runs"],
        [[r["articles"], r["chunks"], r["dense"], r["chunks_embedded"], r["named_embedding_s"], r["named_other_s"],
          r["named_remove_s"], r["other_s"], r["remove_s"], r["named_bytes_written"],
          r["named_remove_bytes_written"], r["runs"]]
         for r in results["incremental"]])
    return (f"{table}\n\nExisting articles synthetic (`bench/common.py`), the added one a real sample article "
            "embedded by the model. Named: `run_update` (`qa-ingest FILE`, `--remove ID`, POST and DELETE "
            "/articles); folder: `run_ingest` reads and diffs the whole folder (`qa-ingest ARTICLES_DIR`). "
            "Medians of the runs; a dash: not run at that size.")


def recall_table(results: dict) -> str | None:
    if not results.get("recall"):
        return None
    table = markdown_table(
        ["chunks", "dense index", "questions", "recall@10 (target ≥ 0.95)", "ANN search ms (p50)",
         "exact flat search ms (p50)"],
        [[r["chunks"], r["dense"], r["queries"], r["recall_at_10"], r["ann_ms_p50"], r["exact_ms_p50"]]
         for r in sorted(results["recall"], key=lambda r: r["chunks"])])
    return (f"{table}\n\n`QA_DENSE_INDEX=auto`: flat (exact) below `QA_DENSE_ANN_MIN_CHUNKS` chunks, else IVF "
            "over 8-bit scalar-quantised vectors. All SciFact claims as questions, embedded by the model; "
            "truth: exact inner-product search over the same vectors.")


def latency_table(results: dict) -> str | None:
    latency = results.get("latency") or []
    if not latency:
        return None
    emb = results.get("query_embedding_ms") or {}
    table = markdown_table(
        ["system", "chunks", "dense", "requests", "clients", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s",
         "RSS MB", "anon MB", "peak MB", "bytes/chunk", "load s"],
        [[r["system"], r["chunks"], r["dense"], r["requests"], r["clients"], r["errors"], r["p50_ms"], r["p95_ms"],
          r["p99_ms"], r["requests_per_s"], r["rss_mb"], r["rss_anon_mb"], r["rss_peak_mb"], r["bytes_per_chunk"],
          r["load_s"]]
         for r in sorted(latency, key=lambda r: (r["system"], r["clients"], r["chunks"]))])
    return (f"{table}\n\n`qa-serve` on a synthetic index of each size; a fixed number of `GET /ask?q=` (SciFact "
            "claims, hybrid, top 5) from concurrent clients after 30 to warm up; the server's resident memory "
            "from /proc after the run. Query embedding alone (one claim, median of 200), the floor: ONNX "
            f"Runtime {emb.get('onnx_1', '–')} ms with 1 thread, {emb.get('onnx_2', '–')} ms with 2; torch "
            f"{emb.get('torch_1', '–')} ms with 1 thread, {emb.get('torch_2', '–')} ms with 2.")


def _langchain_rows(results: dict) -> list[list[object]]:
    ingest, lc_ingest, latency = results.get("ingest"), results.get("langchain_ingest"), results.get("latency") or []
    rows: list[list[object]] = []
    if lc_ingest and ingest:
        rows.append(["ingest chunks/s (SciFact)", ingest["ingest_chunks_per_s"], lc_ingest["chunks_per_s"],
                     _ratio(ingest["ingest_chunks_per_s"], lc_ingest["chunks_per_s"])])
    for lc in results.get("langchain_rebuild") or []:
        ours = next((r for r in results.get("incremental") or [] if r["articles"] == lc["articles"]), None)
        lc_total = lc["embed_s_projected"] + (lc["index_s"] or 0)
        rows.append([f"add one article to {lc['articles']:,} articles (s)", ours and ours["named_total_s"],
                     f"{lc_total:.1f} (embed {lc['embed_s_projected']} projected + index {lc['index_s']} measured)",
                     _ratio(lc_total, ours and ours["named_total_s"])])
    for r in sorted((x for x in latency if x["system"] == "langchain"), key=lambda x: (x["clients"], x["chunks"])):
        ours = next((x for x in latency if (x["system"], x["chunks"], x["clients"]) == ("ours", r["chunks"], r["clients"])),
                    None)
        if ours:
            at = f"at {r['chunks']:,} chunks, {r['clients']} client(s)"
            for key, name in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("rss_mb", "RSS MB")):
                rows.append([f"{name} {at}", ours[key], r[key], _ratio(r[key], ours[key])])
            rows.append([f"req/s {at}", ours["requests_per_s"], r["requests_per_s"],
                         _ratio(ours["requests_per_s"], r["requests_per_s"])])
    return rows


def langchain_table(results: dict) -> str | None:
    if not (results.get("langchain_ingest") or results.get("langchain_rebuild")):
        return None
    table = markdown_table(["figure", "ours", "LangChain", "ratio (>1: ours ahead)"], _langchain_rows(results))
    return (f"{table}\n\nRecursiveCharacterTextSplitter(600, 100) → HuggingFaceEmbeddings (same model) → "
            "langchain-community FAISS (flat), full rebuild on add (`bench/langchain_baseline.py`). Ratios are "
            "ours / LangChain for throughput, LangChain / ours for times and memory. LangChain's rebuild "
            "re-embeds every chunk: its embedding time is projected from its measured ingest rate; "
            "`FAISS.from_embeddings` and the save are measured on the synthetic texts and vectors.")


@dataclass(frozen=True)
class Section:
    """How one scenario's results become its block: the block's name, its heading where the
    block is new, and the function that renders the body (None: no figures yet)."""

    block: str
    heading: str
    render: Callable[[dict], str | None]


SECTIONS = {
    "ingest": Section("ingest-throughput", "## Ingest throughput", ingest_table),
    "incremental": Section("incremental-add", "## Incremental add: one article into an existing index",
                           incremental_table),
    "recall": Section("ann-recall", "## Dense index: recall@10 against exact search", recall_table),
    "latency": Section("latency", "## Query latency over HTTP and serving memory", latency_table),
    "langchain": Section("langchain", "## Side by side with the plain LangChain pipeline", langchain_table),
}


def tables(results: dict, scenarios: list[str], plot_name: str | None = None) -> dict[str, Table]:
    """The tables of `scenarios` that `results` has figures for, by scenario; the latency table
    shows the plot `plot_name` (a file beside the document) when given."""
    out = {}
    for scenario in scenarios:
        section = SECTIONS[scenario]
        body = section.render(results)
        if not body:
            continue
        body += " " + machine_note(results, scenario)
        if scenario == "latency" and plot_name:
            body += f"\n\n![latency against index size]({plot_name})"
        out[scenario] = Table(section.block, body, section.heading)
    return out


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
