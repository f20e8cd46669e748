"""The question path: ONNX Runtime must give the vectors torch gives, and torch stays usable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.encoder import Encoder
from index.query_model import META_FILE, NotExportable, OnnxQueryModel, export
from tests.conftest import REPO

SAMPLE_QUESTIONS = REPO.parent / "shared" / "eval" / "questions.jsonl"


def _questions() -> list[str]:
    # The sample questions when the shared folder is there, plus a long, odd one either way.
    questions = ["Ünïcode, numbers (22 per cent) & a very long question " * 40]
    if SAMPLE_QUESTIONS.exists():
        questions += [json.loads(line)["question"] for line in SAMPLE_QUESTIONS.open() if line.strip()]
    return questions


@pytest.mark.slow
def test_onnx_question_vectors_equal_torch_vectors(encoder: Encoder) -> None:
    questions = _questions()
    onnx = np.stack([encoder.encode_query(q) for q in questions])
    assert encoder.query_backend == "onnx"  # did not fall back
    torch_vectors = encoder.encode(questions)
    assert onnx.shape == torch_vectors.shape == (len(questions), encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(onnx, torch_vectors, atol=1e-4)


@pytest.mark.slow
def test_texts_embedded_together_equal_one_by_one(encoder: Encoder) -> None:
    # encode_questions runs texts in padded batches of similar length (citation checks, the
    # insights' question groups); each vector is what the question path gives it alone.
    texts = [*_questions(), "Why?", "who argues against means-testing?", "a " * 300, "Where?"] * 3
    together = encoder.encode_questions(texts)
    alone = np.stack([encoder.encode_query(text) for text in texts])
    assert together.shape == (len(texts), encoder.dim) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_torch_backend_is_a_setting(encoder: Encoder) -> None:
    torch_encoder = Encoder(encoder.model_name, query_backend="torch")
    question = "who argues against means-testing?"
    np.testing.assert_allclose(torch_encoder.encode_query(question), encoder.encode([question])[0], atol=1e-6)
    assert torch_encoder.query_backend == "torch" and torch_encoder._query_model is None


@pytest.mark.slow
def test_the_question_path_is_kept_and_read_back_without_torch(tmp_path: Path, encoder: Encoder) -> None:
    folder = tmp_path / "index" / "cache" / "query-model"
    folder.parent.mkdir(parents=True)  # an ingest made the index's cache folder
    question = "Which countries have co-operatives running hospitals?"
    # A new process exports the question path into the folder (through a child: it has not
    # loaded torch), answers with it, and never imports torch itself.
    script = (
        "import sys, json; from pathlib import Path; from index.encoder import Encoder; "
        f"e = Encoder({encoder.model_name!r}, query_model_dir=Path({str(folder)!r}), threads=1); "
        f"v = e.encode_query({question!r}); "
        "print(json.dumps({'torch': 'torch' in sys.modules, 'vector': v.tolist()}))"
    )
    for run in ("exports", "reads back"):
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300, check=True)
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer["torch"] is False, run
        np.testing.assert_allclose(answer["vector"], encoder.encode([question])[0], atol=1e-4)
        if run == "exports":
            exported_at = (folder / "model.onnx").stat().st_mtime_ns
    assert (folder / "model.onnx").stat().st_mtime_ns == exported_at  # read, not exported again


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["another model", "other vectors"])
def test_a_question_path_that_does_not_check_out_is_exported_again(
    tmp_path: Path, encoder: Encoder, damage: str
) -> None:
    folder = tmp_path / "query-model"
    export(encoder._model, encoder.model_name, folder)
    meta = json.loads((folder / META_FILE).read_text())
    if damage == "another model":
        meta["model"] = "someone/else"
    else:
        first = next(iter(meta["probes"]))
        meta["probes"][first] = [v + 0.01 for v in meta["probes"][first]]
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(NotExportable):
        OnnxQueryModel.load(folder, encoder.model_name, threads=1)
    fresh = Encoder(encoder.model_name, query_model_dir=folder, threads=1)
    question = "who argues against means-testing?"
    np.testing.assert_allclose(fresh.encode_query(question), encoder.encode([question])[0], atol=1e-4)
    assert fresh.query_backend == "onnx"
    assert json.loads((folder / META_FILE).read_text())["model"] == encoder.model_name


@pytest.mark.slow
def test_a_server_started_before_any_index_writes_nothing_there(tmp_path: Path, encoder: Encoder) -> None:
    index = tmp_path / "index"
    fresh = Encoder(encoder.model_name, query_model_dir=index / "cache" / "query-model", threads=1)
    question = "What is the Right to Provide scheme?"
    np.testing.assert_allclose(fresh.encode_query(question), encoder.encode([question])[0], atol=1e-4)
    assert not index.exists()
