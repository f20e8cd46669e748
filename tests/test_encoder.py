"""The question path: ONNX Runtime must give the vectors torch gives, and torch stays usable."""

from __future__ import annotations

import json

import numpy as np

from index.encoder import Encoder
from tests.conftest import REPO

SAMPLE_QUESTIONS = REPO.parent / "shared" / "eval" / "questions.jsonl"


def _questions() -> list[str]:
    # The sample questions when the shared folder is there, plus a long, odd one either way.
    questions = ["Ünïcode, numbers (22 per cent) & a very long question " * 40]
    if SAMPLE_QUESTIONS.exists():
        questions += [json.loads(line)["question"] for line in SAMPLE_QUESTIONS.open() if line.strip()]
    return questions


def test_onnx_question_vectors_equal_torch_vectors(encoder: Encoder) -> None:
    questions = _questions()
    onnx = np.stack([encoder.encode_query(q) for q in questions])
    assert encoder.query_backend == "onnx"  # did not fall back
    torch_vectors = encoder.encode(questions)
    assert onnx.shape == torch_vectors.shape == (len(questions), encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(onnx, torch_vectors, atol=1e-4)


def test_torch_backend_is_a_setting(encoder: Encoder) -> None:
    torch_encoder = Encoder(encoder.model_name, query_backend="torch")
    question = "who argues against means-testing?"
    np.testing.assert_allclose(torch_encoder.encode_query(question), encoder.encode([question])[0], atol=1e-6)
    assert torch_encoder.query_backend == "torch" and torch_encoder._query_model is None
