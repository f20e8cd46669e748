"""`qa-ingest --engine ray` on a local Ray: the same chunks, vectors and answers as the
in-process engine (ingest/ray_engine.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.encoder import Encoder
from index.evaluate import evaluate, parse_eval_set
from index.search import Searcher
from index.settings import Settings
from index.store import load_index
from ingest.pipeline import run_ingest
from tests.conftest import REPO, SAMPLE_ARTICLES

ray = pytest.importorskip("ray", reason="the 'distributed' extra is not installed")
from ingest.ray_engine import NAMESPACE, RayOptions

SCIFACT = REPO.parent / "shared" / "bench" / "scifact" / "corpus.jsonl"
QUESTIONS = [
    {"question": "who argues against means-testing?", "article": "000_b56ffdfc634a8662",
     "must_contain": "no moral case for social care means-testing", "speaker": "Simon Duffy"},
    {"question": "How do I bake sourdough bread?", "article": None, "must_contain": None, "out_of_scope": True},
]


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_chunks_vectors_and_answers(tmp_path: Path, encoder: Encoder) -> None:
    articles = tmp_path / "articles"
    shutil.copytree(SAMPLE_ARTICLES, articles)
    if SCIFACT.exists():  # a few hundred more chunks, of another kind: two embedding batches
        with SCIFACT.open(encoding="utf-8") as source, (articles / "scifact.jsonl").open("w") as bundle:
            for _, line in zip(range(60), source):
                doc = json.loads(line)
                bundle.write(json.dumps({"id": f"scifact-{doc['_id']}", "title": doc["title"], "text": doc["text"]}) + "\n")
    local = run_ingest(articles, Settings(index_dir=tmp_path / "local"), encoder, progress=False)
    done = []
    ray.init(include_dashboard=False, log_to_driver=False)  # a cluster the runs join, as with --ray-address
    try:
        distributed = run_ingest(articles, Settings(index_dir=tmp_path / "ray"), encoder, progress=False,
                                 ray=RayOptions(), on_progress=lambda stage, d, t: done.append((stage, d, t)))
        # The encoder actors stay in the cluster for the next run, until a run releases them.
        assert 0 < _encoder_actors() <= int(ray.cluster_resources()["CPU"])  # no more than batches
        again = run_ingest(articles, Settings(index_dir=tmp_path / "ray"), encoder, progress=False,
                           ray=RayOptions(release_encoders=True))
        assert not again.published and _encoder_actors() == 0
    finally:
        ray.shutdown()
    assert distributed.chunks == local.chunks and distributed.chunks_embedded == local.chunks_embedded > 80
    assert ("embedding", local.chunks_embedded, local.chunks_embedded) in done  # progress as the local engine reports it

    one, other = load_index(tmp_path / "local"), load_index(tmp_path / "ray")
    assert [(c.id, c.article_id, c.start, c.end, c.section, c.speaker) for c in one.chunks] == [
        (c.id, c.article_id, c.start, c.end, c.section, c.speaker) for c in other.chunks
    ]
    assert np.abs(np.asarray(one.vectors) - np.asarray(other.vectors)).max() < 1e-5

    eval_set = parse_eval_set([json.dumps(q) for q in QUESTIONS], "<test>")
    scores = [
        evaluate(Searcher(index, encoder, Settings()), eval_set.questions)
        for index in (one, other)
    ]
    assert scores[0] == scores[1] and scores[0]["questions"] == 2
    asked = ["Which commenter compares healthcare to having a kitchen replaced?", "What does the NHS Long Term Plan say about communities?"]
    if SCIFACT.exists():
        asked.append("Does vitamin D affect bone density?")
    for question in asked:
        answers = [[(p.chunk.id, round(p.score, 5)) for p in Searcher(index, encoder, Settings()).search(question).passages]
                   for index in (one, other)]
        assert answers[0] == answers[1] and answers[0]


def _encoder_actors() -> int:
    return sum(a["namespace"] == NAMESPACE for a in ray.util.list_named_actors(all_namespaces=True))
