"""qa-calibrate on the real sample index, and what a searcher does with and without a
calibration for its model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from index.confidence import CALIBRATION_FILE, Calibration, CalibrationChoice, calibration_stamp
from index.encoder import Encoder, resolve_model_path
from index.search import Searcher
from index.settings import DEFAULT_MODEL, Settings
from index.store import load_index
from ingest.pipeline import run_ingest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TUNE = REPO / "eval" / "extra.jsonl"  # tune-only questions about the sample articles
SAMPLE_ARTICLES = REPO / "data" / "articles"
QUESTIONS = [
    "who argues against means-testing?",
    "What does the Labour policy say about community health councils?",
    "How much have A&E visits gone up?",
    "Which reader says care homes show privatisation has failed?",
    "What did Andrew Lansley tell the conference?",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=600, cwd=REPO)


@pytest.mark.slow
def test_qa_calibrate_fits_and_stores_a_calibration_the_searcher_then_uses(
    sample_index: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index = tmp_path / "index"
    shutil.copytree(sample_index, index)
    # The same questions stand in for another collection's (--also): they add examples.
    fitted = run("qa-calibrate", str(TUNE), "--index", str(index), "--also", f"{TUNE}={sample_index}")
    assert fitted.returncode == 0, fitted.stderr
    assert "with the first passage right" in fitted.stdout and "cross-validated (5 folds" in fitted.stdout

    stored = Calibration.from_json((index / CALIBRATION_FILE).read_text(), "stored")
    # Fitted for the configuration the index was built with (QA_MODEL: the default model or another).
    assert stored.embedding_spec == encoder.spec and stored.fitted_on["files"] == [TUNE.name]
    assert stored.fitted_on["searches"] >= 100 and stored.fitted_on["also_searches"] == stored.fitted_on["searches"]
    assert stored.fitted_on["other_weight"] in ("each 1", "balanced")
    # The held-out curve: fewer answers and no fewer right ones in share as the bar rises.
    answered = [a for _, a, _ in stored.held_out]
    followups = [a for _, a, _ in stored.held_out_followups]
    assert answered == sorted(answered, reverse=True) and followups == sorted(followups, reverse=True)
    assert answered[0] + followups[0] <= stored.fitted_on["searches"]
    assert 0.5 <= stored.threshold(0.95) <= 0.95 and "'high' needs probability >=" in fitted.stdout

    searcher = Searcher(load_index(index), encoder, Settings(index_dir=index))
    assert searcher.calibration.calibration == stored and "qa-calibrate" in searcher.calibration.reason
    result = searcher.search(QUESTIONS[0])
    assert result.probability == pytest.approx(stored.probability(searcher.search_with_signals(QUESTIONS[0])[1]))


def test_qa_calibrate_refuses_a_file_that_is_not_labelled_questions(sample_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(sample_index, index)
    # The calibration the index has before (none of its own for the default model, whose
    # calibration is shipped; the one qa-calibrate fitted for another model) stays as it was.
    before = calibration_stamp(index), (index / CALIBRATION_FILE).read_bytes() if calibration_stamp(index) else None
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "who?", "article": "x"}\n')  # no span to judge it by
    out = run("qa-calibrate", str(bad), "--index", str(index))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.startswith("qa-calibrate: error:")
    after = calibration_stamp(index), (index / CALIBRATION_FILE).read_bytes() if calibration_stamp(index) else None
    assert after == before and not list(index.glob(CALIBRATION_FILE + ".tmp"))


@pytest.mark.slow
def test_a_model_without_a_calibration_never_answers_high(tmp_path: Path, sample_index: Path) -> None:
    # The same weights under another name (a local path) are another model to the service:
    # the shipped calibration is not for it, so nothing it says is "high".
    model = resolve_model_path(DEFAULT_MODEL)
    assert model != DEFAULT_MODEL
    settings = Settings(index_dir=tmp_path / "index", model=model)
    other = Encoder(model)
    run_ingest(SAMPLE_ARTICLES, settings, encoder=other, progress=False)
    searcher = Searcher(load_index(settings.index_dir), other, settings)
    assert searcher.calibration.calibration is None
    assert "no calibration" in searcher.calibration.reason and "qa-calibrate" in searcher.calibration.reason
    results = [searcher.search(q) for q in QUESTIONS]
    assert all(r.passages and r.confidence == "low" and r.answer is None and r.probability is None for r in results)

    # With a calibration that would answer every question, the same searches can be "high".
    generous = Calibration(model, ("margin",), (0.0,), 10.0, {})
    calibrated = Searcher(searcher.index, other, settings, CalibrationChoice(generous, "test"))
    assert any(calibrated.search(q).confidence == "high" for q in QUESTIONS)

    # qa-ask says why there is no short answer.
    asked = run("qa-ask", QUESTIONS[0], "--index", str(settings.index_dir), "--json")
    assert asked.returncode == 0, asked.stderr
    body = json.loads(asked.stdout)
    assert body["confidence"] == "low" and "no calibration" in body["calibration"]

    # Another model's index cannot lend its questions to this one's calibration.
    refused = run("qa-calibrate", str(TUNE), "--index", str(sample_index), "--also", f"{TUNE}={settings.index_dir}",
                  "--out", str(tmp_path / "never.json"))
    assert refused.returncode == 1 and "was built with" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "never.json").exists()
