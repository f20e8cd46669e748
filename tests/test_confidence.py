"""The confidence stage on fixed signal values (no index), and the calibration file's rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from index.confidence import (
    CALIBRATION_FILE,
    FEATURES,
    Calibration,
    ConfidencePolicy,
    Signals,
    choose_calibration,
    decide,
    save_calibration,
    shipped_calibration,
)
from index.errors import QAError
from index.models import EmbeddingSpec, RerankSpec
from index.settings import DEFAULT_MODEL, Settings

DEFAULT = EmbeddingSpec("sentence-transformers", DEFAULT_MODEL)
OTHER = EmbeddingSpec("sentence-transformers", "local/other-model")

STRONG = Signals(cosine=0.7, margin=0.4, agree=1, dense_rank=1, lexical_rank=1, same_article=1,
                 coverage=0.9, sentence_coverage=0.8, followup=0)
WEAK = Signals(cosine=0.4, margin=0.01, agree=0, dense_rank=0.25, lexical_rank=0.1, same_article=0.33,
               coverage=0.2, sentence_coverage=0.1, followup=0)
# A calibration that weighs the margin alone: probability = 1 / (1 + exp(-(20 x margin - 4))).
MARGIN_ONLY = Calibration(model=DEFAULT_MODEL, features=("margin",), weights=(20.0,), intercept=-4.0, fitted_on={})
POLICY = ConfidencePolicy(target_precision=0.95, nothing_below=0.25, scoped_nothing_below=0.2)


@pytest.mark.parametrize(
    ("signals", "closest", "scoped", "has_answer", "calibration", "level"),
    [
        (STRONG, 0.7, False, True, MARGIN_ONLY, "high"),  # p = 0.98
        (STRONG, 0.7, False, False, MARGIN_ONLY, "low"),  # no sentence answers: never high
        (WEAK, 0.4, False, True, MARGIN_ONLY, "low"),  # p = 0.02
        (STRONG, 0.7, False, True, None, "low"),  # no calibration: never high
        (STRONG, 0.24, False, True, MARGIN_ONLY, "none"),  # below the floor: nothing shown
        (STRONG, 0.24, True, True, MARGIN_ONLY, "high"),  # a scoped search's floor is lower
        (STRONG, 0.19, True, True, MARGIN_ONLY, "none"),
        (None, 0.7, False, True, MARGIN_ONLY, "none"),  # no passages
    ],
)
def test_decide(signals, closest, scoped, has_answer, calibration, level) -> None:
    decided, probability = decide(signals, closest, scoped, has_answer, calibration, POLICY)
    assert decided == level
    if level == "none" or calibration is None:
        assert probability is None
    else:
        assert probability == pytest.approx(1 / (1 + math.exp(-(20 * signals.margin - 4))))


def test_the_target_precision_moves_the_bar_for_high() -> None:
    # margin 0.3: p = 1 / (1 + e^-2) = 0.881
    signals = Signals(**{**STRONG.__dict__, "margin": 0.3})
    assert decide(signals, 0.7, False, True, MARGIN_ONLY, ConfidencePolicy(target_precision=0.95))[0] == "low"
    assert decide(signals, 0.7, False, True, MARGIN_ONLY, ConfidencePolicy(target_precision=0.85))[0] == "high"


# Held-out curve (threshold, answered, right): 60 of 61 right at 0.9, 66 of 69 at 0.85 (0.957),
# 70 of 75 at 0.8 (0.933), 80 of 84 at 0.75 (0.952: not reached, 0.8 failed first).
CURVE = ((0.95, 40, 40), (0.9, 61, 60), (0.85, 69, 66), (0.8, 75, 70), (0.75, 84, 80))


@pytest.mark.parametrize(
    ("held_out", "target", "threshold"),
    [
        (CURVE, 0.95, 0.85),  # lowered while the answers above were right at the target rate
        (CURVE, 0.99, 0.95),  # 40 of 40 right at 0.95, 60 of 61 (0.984) at 0.9
        (((0.95, 40, 38),), 0.97, 0.97),  # not met below the target: the target itself
        (CURVE, 0.93, 0.75),  # every point down to 0.75 is right at least 93% of the time
        ((), 0.95, 0.95),  # no held-out curve: the target itself
        (((0.95, 40, 40), (0.9, 19, 19)), 0.95, 0.95),  # too few answers to trust a lower bar
    ],
)
def test_the_threshold_for_a_target_precision_follows_the_held_out_curve(held_out, target, threshold) -> None:
    calibration = Calibration(DEFAULT_MODEL, ("margin",), (20.0,), -4.0, {}, held_out)
    assert calibration.threshold(target) == threshold


def test_a_follow_up_has_the_threshold_of_follow_ups() -> None:
    calibration = Calibration(DEFAULT_MODEL, ("margin",), (20.0,), -4.0, {}, CURVE, ((0.95, 12, 12), (0.9, 15, 14)))
    assert calibration.threshold(0.95) == 0.85
    assert calibration.threshold(0.95, followup=True) == 0.95  # too few follow-ups to lower it


def test_high_needs_the_calibrations_threshold() -> None:
    # margin 0.3: p = 0.881, below the target 0.95 but above the held-out threshold 0.85.
    signals = Signals(**{**STRONG.__dict__, "margin": 0.3})
    lowered = Calibration(DEFAULT_MODEL, ("margin",), (20.0,), -4.0, {}, CURVE)
    assert decide(signals, 0.7, False, True, lowered, POLICY)[0] == "high"
    assert decide(signals, 0.7, False, True, MARGIN_ONLY, POLICY)[0] == "low"


def test_a_calibration_survives_the_round_trip_through_its_file(tmp_path: Path) -> None:
    calibration = Calibration(DEFAULT_MODEL, FEATURES, tuple(float(i) for i in range(len(FEATURES))), -1.5,
                              {"searches": 3}, CURVE, CURVE[:2])
    path = save_calibration(tmp_path, calibration)
    assert path == tmp_path / CALIBRATION_FILE and not list(tmp_path.glob("*.tmp"))
    assert Calibration.from_json(path.read_text(), str(path)) == calibration


@pytest.mark.parametrize(
    "text",
    ["not json", "{}", json.dumps({"format": 1, "model": "m", "features": ["cosine"], "weights": [], "intercept": 0}),
     json.dumps({"format": 1, "model": "m", "features": ["shoe size"], "weights": [1], "intercept": 0}),
     json.dumps({"format": 99, "model": "m", "features": [], "weights": [], "intercept": 0})],
)
def test_a_broken_calibration_file_is_a_clear_error(text: str) -> None:
    with pytest.raises(QAError, match="not a calibration|unknown or weights"):
        Calibration.from_json(text, "calibration.json")


def test_the_default_model_uses_the_shipped_calibration(tmp_path: Path) -> None:
    choice = choose_calibration(tmp_path, DEFAULT)
    assert choice.calibration == shipped_calibration()
    assert choice.calibration.embedding_spec == DEFAULT and "shipped" in choice.reason


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "default"])
def test_the_default_model_by_another_name_is_the_default(tmp_path: Path, name: str) -> None:
    # QA_MODEL=all-MiniLM-L6-v2 loads the shipped model: its index, an index recorded under that
    # name, and a calibration fitted under it all agree with the full name's.
    assert Settings(model=name).model == DEFAULT_MODEL
    configured = EmbeddingSpec.from_settings(Settings(model=name))
    assert configured == DEFAULT and configured.is_default
    assert choose_calibration(tmp_path, configured).calibration == shipped_calibration()
    recorded = EmbeddingSpec.from_record({"provider": "sentence-transformers", "model": name}, name)
    assert recorded == DEFAULT
    # An endpoint's model names are its own: nothing is renamed there.
    assert EmbeddingSpec("openai", name).model == name


def test_an_index_calibration_is_used_for_its_model_and_refused_for_another(tmp_path: Path) -> None:
    own = Calibration("local/other-model", ("margin",), (3.0,), -1.0, {}, embedding=OTHER)
    save_calibration(tmp_path, own)
    assert choose_calibration(tmp_path, OTHER).calibration == own

    # The default model is not what it was fitted for: refused, the shipped one used, and said.
    refused = choose_calibration(tmp_path, DEFAULT)
    assert refused.calibration == shipped_calibration()
    assert "fitted for local/other-model" in refused.reason and "not used" in refused.reason

    # A third model has neither: never high, and the reason says how to fix it.
    none = choose_calibration(tmp_path, EmbeddingSpec("openai", "local/third-model"))
    assert none.calibration is None
    assert "qa-calibrate" in none.reason and "never 'high'" in none.reason


@pytest.mark.parametrize(
    ("embedding", "reranker", "changed"),
    [
        (EmbeddingSpec("sentence-transformers", "local/other-model", query_prefix="query: "), None,
         "question prefix 'query: '"),
        (EmbeddingSpec("sentence-transformers", "local/other-model", document_prefix="passage: "), None,
         "passage prefix 'passage: '"),
        (EmbeddingSpec("openai", "local/other-model"), None, "(openai)"),
        (OTHER, RerankSpec("cross-encoder", "local/ce"), "reranked by local/ce"),
    ],
)
def test_a_calibration_is_keyed_by_prefixes_provider_and_reranker(
    tmp_path: Path, embedding: EmbeddingSpec, reranker: RerankSpec | None, changed: str
) -> None:
    """The same model with another prefix, provider or reranker gives other signals: the
    calibration fitted without them is refused and never answers 'high'."""
    save_calibration(tmp_path, Calibration("local/other-model", ("margin",), (3.0,), -1.0, {}, embedding=OTHER))
    choice = choose_calibration(tmp_path, embedding, reranker)
    assert choice.calibration is None
    assert "not used" in choice.reason and changed in choice.reason and "never 'high'" in choice.reason

    # The shipped calibration is for the default model alone: a reranker on it needs its own.
    assert choose_calibration(tmp_path / "none", DEFAULT, RerankSpec("endpoint", "m", "tei")).calibration is None


def test_a_calibration_round_trips_its_configuration(tmp_path: Path) -> None:
    fitted = Calibration("m", ("margin",), (3.0,), -1.0, {}, embedding=EmbeddingSpec("openai", "m", "q: ", "d: "),
                         reranker=RerankSpec("endpoint", "rr", "cohere"))
    save_calibration(tmp_path, fitted)
    assert choose_calibration(tmp_path, fitted.embedding, fitted.reranker).calibration == fitted


def test_the_shipped_calibration_weighs_every_signal_and_says_what_it_was_fitted_on() -> None:
    shipped = shipped_calibration()
    assert shipped.features == FEATURES
    assert shipped.fitted_on["searches"] > 100 and 0 < shipped.fitted_on["right"] < shipped.fitted_on["searches"]
    # More agreement between the retrievers never lowers the estimate.
    assert dict(zip(shipped.features, shipped.weights))["agree"] > 0
