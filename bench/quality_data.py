"""Benchmark data for `bench/quality.py`: BEIR folders and SQuAD v1.1 turned into the
`.jsonl` articles `qa-ingest` reads, and their queries and relevance judgements.

BEIR documents become one article each, text = title + blank line + abstract (the "flat"
rendering MTEB and Anserini use), so the title is searchable and in the first passage.
SQuAD articles become one article each with their paragraphs joined by blank lines, so
the chunking is ours, not SQuAD's paragraphs."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import read_jsonl


@dataclass
class Query:
    id: str
    text: str
    # BEIR: document id -> graded relevance. SQuAD: the article id (one, weight 1).
    relevant: dict[str, int] = field(default_factory=dict)
    answers: list[str] = field(default_factory=list)  # SQuAD gold answer strings


@dataclass
class Benchmark:
    name: str
    articles: list[dict]  # rows for a .jsonl articles file
    queries: list[Query]


def article_id(raw: str) -> str:
    """An id the index accepts (`ARTICLE_ID_PATTERN`): BEIR ids are kept when they fit."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", raw)
    if not cleaned[:1].isalnum():
        cleaned = "d" + cleaned
    return cleaned[:200]


def load_beir(folder: Path, split: str = "test", name: str | None = None) -> Benchmark:
    """A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): every document, and
    the queries of `split` with their graded judgements (grade 0 rows are dropped)."""
    articles = []
    for doc in read_jsonl(folder / "corpus.jsonl"):
        title = (doc.get("title") or "").strip()
        body = (doc.get("text") or "").strip()
        text = f"{title}\n\n{body}" if title and body else (title or body)
        if not text:
            continue
        articles.append({"id": article_id(str(doc["_id"])), "title": title or None, "text": text})
    judged: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            parts = line.rstrip("\n").split("\t")
            if number == 0 and parts[0] == "query-id":
                continue
            if len(parts) < 3 or int(parts[2]) <= 0:
                continue
            judged.setdefault(parts[0], {})[article_id(parts[1])] = int(parts[2])
    texts = {str(q["_id"]): q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    queries = [Query(id=qid, text=texts[qid], relevant=rel) for qid, rel in judged.items()]
    queries.sort(key=lambda q: q.id)
    return Benchmark(name or folder.name, articles, queries)


def load_squad(path: Path, sample: int | None = 2000, seed: int = 7) -> Benchmark:
    """SQuAD v1.1: one article per Wikipedia title (paragraphs joined), and its questions,
    a seeded random `sample` of them (None: all), each with its gold answers and article."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    articles, queries = [], []
    for number, entry in enumerate(data):
        aid = f"squad-{number:03d}"
        title = entry["title"].replace("_", " ")
        paragraphs = [p["context"].strip() for p in entry["paragraphs"]]
        articles.append({"id": aid, "title": title, "text": "\n\n".join(paragraphs)})
        for paragraph in entry["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = sorted({a["text"].strip() for a in qa["answers"] if a["text"].strip()})
                queries.append(
                    Query(
                        id=qa["id"], text=qa["question"].strip(), relevant={aid: 1}, answers=answers
                    )
                )
    if sample is not None and sample < len(queries):
        queries = random.Random(seed).sample(queries, sample)
    return Benchmark("squad", articles, queries)


def write_articles(benchmark: Benchmark, folder: Path) -> Path:
    """The benchmark's articles as one `.jsonl` file in `folder` (rewritten only if changed,
    so a re-run is an unchanged ingest)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{benchmark.name}.jsonl"
    body = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in benchmark.articles)
    if not target.exists() or target.read_text(encoding="utf-8") != body:
        target.write_text(body, encoding="utf-8")
    return target
