"""`bench.quality`'s results (its JSON) as the tables it prints and publishes into
docs/quality.md: BEIR (nDCG@10, Recall@100), SQuAD (answer and article recall) and the
confidence levels within and across benchmarks."""

from __future__ import annotations

import re
from typing import Any

from bench.publish import Table, markdown_table
from index.records import CONFIDENCE_LEVELS
from index.settings import DEFAULT_MODEL, is_default_model

SYSTEM_LABELS = {
    "bm25": "BM25 only",
    "dense": "dense only",
    "hybrid": "our hybrid",
    "txtai": "txtai hybrid (same chunks, same vectors)",
    "hybrid (served)": "our hybrid as served (`search`, top 20, per-article cap)",
}
BENCHMARK_LABELS = {"scifact": "SciFact", "nfcorpus": "NFCorpus", "squad": "SQuAD v1.1 dev"}
SQUAD_METRICS = ("answer_recall_at_1", "answer_recall_at_5", "answer_recall_at_20", "article_at_1", "article_at_5")


def _label(name: str) -> str:
    return BENCHMARK_LABELS.get(name, name)


def _seconds(scores: dict[str, Any]) -> str:
    extra = f" (+{scores['index_seconds']} index)" if "index_seconds" in scores else ""
    return f"{scores['seconds']}{extra}"


def _is_squad(systems: dict[str, dict]) -> bool:
    return any("answer_recall_at_1" in scores for scores in systems.values())


def beir_table(results: dict[str, Any]) -> str | None:
    rows = []
    for name, systems in results["benchmarks"].items():
        if _is_squad(systems):
            continue
        for position, (system, scores) in enumerate(systems.items()):
            benchmark = f"{_label(name)} ({scores['queries']} q)" if position == 0 else _label(name)
            rows.append([benchmark, SYSTEM_LABELS.get(system, system), f"{scores['ndcg_at_10']:.3f}",
                         f"{scores['recall_at_100']:.3f}", _seconds(scores)])
    return markdown_table(["benchmark", "system", "nDCG@10", "Recall@100", "seconds"], rows) if rows else None


def squad_table(results: dict[str, Any]) -> str | None:
    tables = []
    for name, systems in results["benchmarks"].items():
        if not _is_squad(systems):
            continue
        queries = next(iter(systems.values()))["queries"]
        rows = [[SYSTEM_LABELS.get(system, system), *(f"{scores[key]:.3f}" for key in SQUAD_METRICS), _seconds(scores)]
                for system, scores in systems.items()]
        headers = [f"{_label(name)} ({queries} q)", "answer@1", "answer@5", "answer@20", "article@1", "article@5",
                   "seconds"]
        tables.append(markdown_table(headers, rows))
    return "\n\n".join(tables) or None


def _pair_label(pair: str) -> str:
    asked, _, index_of = pair.partition(" on ")
    return f"{_label(asked)} questions, {_label(index_of)} index"


def confidence_table(results: dict[str, Any]) -> str | None:
    confidence = results.get("confidence")
    if not confidence:
        return None
    rows = [[_pair_label(pair), *(f"{shares[level]:.3f}" for level in CONFIDENCE_LEVELS)]
            for pair, shares in confidence.items() if isinstance(shares, dict)]
    means = (("in_benchmark_abstained", "none", "**in-benchmark, mean** (nothing found: should be low)"),
             ("cross_benchmark_answered", "high", "**cross-benchmark, mean** (answered: should be low)"))
    for key, level, label in means:
        value = confidence.get(key)
        cell = "–" if value is None else f"**{value:.3f}**"
        rows.append([label, *(cell if other == level else "" for other in CONFIDENCE_LEVELS)])
    return markdown_table(["questions on index", *CONFIDENCE_LEVELS], rows)


def _note(results: dict[str, Any]) -> str:
    model = results.get("model", "the configured model")
    return (f"\n\nRanked on our own chunks of each benchmark, embedded by {model}; a document is ranked "
            "by its best passage. Seconds cover the whole query set.")


def tables(results: dict[str, Any]) -> list[Table]:
    """The tables a run has results for, as blocks of docs/quality.md. A model other than the
    default writes blocks of its own ("quality-squad-all-mpnet-base-v2"): the default's stay."""
    model = results.get("model") or DEFAULT_MODEL
    name = model.rsplit("/", 1)[-1].lower()
    suffix = "" if is_default_model(model) else "-" + re.sub(r"[^a-z0-9]+", "-", name).strip("-")
    found = [
        ("quality-beir", beir_table(results), "## BEIR: SciFact and NFCorpus"),
        ("quality-squad", squad_table(results), "## SQuAD v1.1 dev"),
        ("quality-confidence", confidence_table(results), "## Confidence within and across benchmarks"),
    ]
    return [Table(name + suffix, body + (_note(results) if name != "quality-confidence" else ""),
                  heading + (f" ({model})" if suffix else ""))
            for name, body, heading in found if body]
