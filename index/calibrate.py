"""qa-calibrate: fit the confidence stage's calibration on labelled questions and store it
with the index.

Each labelled question (the `qa-eval` format: single questions and conversations, with
`must_contain_any` spans) is searched as the service searches it; the signals the confidence
stage read are kept with whether the first passage answers (an out-of-scope question's never
does). A logistic regression (scikit-learn, L2-regularised) maps the signals to that
probability. Logistic rather than isotonic: nine signals, a few hundred questions about the
archive, and weights a reader can inspect and argue with.

Questions about other collections (`--also QUESTIONS=INDEX`: a public benchmark's training
split, searched on that benchmark's index built with the same model) add examples of the
same signals; they are never what the fit is judged on. The regularisation strength and the
weight of those examples are chosen by cross-validated log loss over the archive's own
questions alone: each fold is predicted by a fit on the other folds plus every other
collection's examples.

    qa-calibrate TUNE.jsonl [MORE.jsonl ...] --index IDX [--also SQUAD.jsonl=SQUAD_IDX]

Fit on questions you do not report figures on."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.confidence import FEATURES, Calibration, CalibrationChoice, Signals, save_calibration
from index.errors import QAError
from index.evaluate import EvalSet, first_passage_right, read_eval_set
from index.models import EmbeddingSpec, RerankSpec
from index.search import Searcher

# Inverse regularisation strengths tried (the signals all lie in [0, 1], so one scale suits
# them all), and the weights tried for another collection's examples: each 1, or all of them
# together as much as the archive's own.
STRENGTHS = (0.1, 1.0, 10.0, 100.0)
OTHER_WEIGHTS = ("each 1", "balanced")
FOLDS = 5
# The thresholds at which the held-out precision curve is stored with the calibration.
CURVE_STEPS = tuple(round(0.5 + i / 100, 2) for i in range(50))


@dataclass(frozen=True)
class Example:
    """One searched question: the signals the confidence stage read, and whether the first
    passage answers it."""

    signals: Signals
    right: bool


def collect(searcher: Searcher, eval_set: EvalSet, top_k: int | None = None) -> list[Example]:
    """Search every question and every follow-up turn (with the earlier turns as history) as
    the service does. Searches that show nothing are left out: they never answer, so they
    teach the calibration nothing about when to."""
    examples = []
    asked = [(q, []) for q in eval_set.questions]
    for conversation in eval_set.conversations:
        questions = [turn.question for turn in conversation.turns]
        asked += [(turn, questions[:i]) for i, turn in enumerate(conversation.turns)]
    for question, history in asked:
        result, signals = searcher.search_with_signals(question.question, top_k=top_k, history=history)
        if signals is not None:
            examples.append(Example(signals, first_passage_right(question, result)))
    return examples


@dataclass(frozen=True)
class Fit:
    """A fitted calibration (with its held-out precision curves) and the setting
    cross-validation chose."""

    calibration: Calibration
    strength: float
    other_weight: str


def fit(
    own: Sequence[Example], other: Sequence[Example], embedding: EmbeddingSpec, fitted_on: dict,
    reranker: RerankSpec | None = None, features: tuple[str, ...] = FEATURES,
) -> Fit:
    """A logistic regression of rightness on the signals of `own` (the archive's questions)
    and `other` (other collections'), its strength and the weight of `other` chosen by
    cross-validated log loss over `own` alone."""
    # Only qa-calibrate needs scikit-learn: a served search applies the stored weights.
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    x, y = _matrix(own, features)
    positives = int(y.sum())
    if min(positives, len(y) - positives) < FOLDS:
        raise QAError(
            f"{len(y)} searches of the archive's own questions with {positives} first passages "
            f"right: at least {FOLDS} right and {FOLDS} wrong are needed to fit on"
        )
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y))
    best = None
    for strength, weighting in itertools.product(STRENGTHS, OTHER_WEIGHTS if other else OTHER_WEIGHTS[:1]):
        held_out = np.zeros(len(y))
        for train, test in folds:
            regression = _regression([own[i] for i in train], other, features, strength, weighting)
            held_out[test] = regression.predict_proba(x[test])[:, 1]
        loss = log_loss(y, held_out)
        if best is None or loss < best[0]:
            best = (loss, strength, weighting, held_out)
    loss, strength, weighting, held_out = best
    followups = x[:, features.index("followup")] if "followup" in features else np.zeros(len(y))
    regression = _regression(own, other, features, strength, weighting)
    calibration = Calibration(
        model=embedding.model,
        embedding=embedding,
        reranker=reranker,
        features=features,
        weights=tuple(round(float(w), 6) for w in regression.coef_[0]),
        intercept=round(float(regression.intercept_[0]), 6),
        fitted_on=fitted_on | {"strength_c": strength, "other_weight": weighting,
                               "cross_validated_log_loss": round(float(loss), 4)},
        held_out=_curve(held_out, y, followups == 0),
        held_out_followups=_curve(held_out, y, followups == 1),
    )
    return Fit(calibration, strength, weighting)


def _curve(probabilities: np.ndarray, right: np.ndarray, among: np.ndarray) -> tuple[tuple[float, int, int], ...]:
    """(threshold, answered, right) at each of CURVE_STEPS, over the examples `among` selects."""
    probabilities, right = probabilities[among], right[among]
    return tuple(
        (t, int((probabilities >= t).sum()), int(right[probabilities >= t].sum())) for t in CURVE_STEPS
    )


def _regression(own: Sequence[Example], other: Sequence[Example], features, strength: float, weighting: str):
    from sklearn.linear_model import LogisticRegression

    x, y = _matrix(list(own) + list(other), features)
    other_weight = 1.0 if weighting == "each 1" else len(own) / max(len(other), 1)
    weights = np.concatenate([np.ones(len(own)), np.full(len(other), other_weight)])
    return LogisticRegression(C=strength, max_iter=2000).fit(x, y, sample_weight=weights)


def _matrix(examples: Sequence[Example], features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([e.signals.values(features) for e in examples], dtype=np.float64).reshape(-1, len(features))
    y = np.array([e.right for e in examples], dtype=np.int64)
    return x, y


def _also(value: str) -> tuple[Path, Path]:
    questions, sep, index = value.rpartition("=")
    if not sep or not questions or not index:
        raise argparse.ArgumentTypeError(f"expected QUESTIONS.jsonl=INDEX_DIR, got {value!r}")
    return Path(questions), Path(index)


def main(argv: list[str] | None = None) -> int:
    from index.cli import open_searcher, run_cli  # the CLIs share how an index is opened and errors shown

    parser = argparse.ArgumentParser(prog="qa-calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("labelled", type=Path, nargs="+", help="JSONL files of labelled questions about this index (qa-eval's format)")
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument(
        "--also", type=_also, action="append", default=[], metavar="QUESTIONS=INDEX",
        help="labelled questions about another collection, searched on its own index (same model); "
        "they add examples, and the fit is still judged on this index's questions",
    )
    parser.add_argument("--out", type=Path, help="write the calibration here instead of into the index folder")
    args = parser.parse_args(argv)
    args.mode = None

    def body() -> int:
        unfitted = CalibrationChoice(None, "being fitted")
        searcher = open_searcher(args.index, unfitted)
        embedding, reranker = searcher.embedding, searcher.rerank_spec
        others = []
        for path, index in args.also:
            other_searcher = open_searcher(index, unfitted)
            if other_searcher.embedding != embedding:
                raise QAError(f"{index} was built with {other_searcher.embedding.describe()}, not "
                              f"{embedding.describe()}: its signals say nothing about this model's")
            others.append((other_searcher, path))
        own = [e for path in args.labelled for e in _collected(searcher, path)]
        other = [e for other_searcher, path in others for e in _collected(other_searcher, path)]
        fitted_on = {
            "files": [p.name for p in args.labelled], "searches": len(own), "right": sum(e.right for e in own),
            "also": [p.name for p, _ in args.also], "also_searches": len(other),
            "date": dt.date.today().isoformat(),
        }
        result = fit(own, other, embedding, fitted_on, reranker)
        calibration = result.calibration
        for name, weight in zip(calibration.features, calibration.weights):
            print(f"  {name:>18} {weight:+.3f}")
        print(f"  {'intercept':>18} {calibration.intercept:+.3f}")
        target = searcher.policy.confidence.target_precision
        print(f"chosen by cross-validated log loss on this index's questions: C {result.strength}, "
              f"other collections' examples weighted {result.other_weight}")
        for followup, kind, curve in ((False, "single questions", calibration.held_out),
                                      (True, "follow-ups", calibration.held_out_followups)):
            threshold = calibration.threshold(target, followup)
            at = [(answered, right) for t, answered, right in curve if t == threshold]
            answered, right = at[0] if at else (0, 0)
            shown = f"{right / answered:.3f}" if answered else "-"
            print(f"{kind}: for precision {target} (QA_TARGET_PRECISION), 'high' needs probability >= "
                  f"{threshold}; cross-validated ({FOLDS} folds, on the fitting questions) {answered} "
                  f"reach it, precision {shown}")
        if args.out:
            args.out.write_text(calibration.to_json(), encoding="utf-8")
            path = args.out
        else:
            path = save_calibration(searcher.index.path.parent.parent, calibration)
        print(f"calibration for {calibration.describe()} written to {path}")
        return 0

    return run_cli("qa-calibrate", body)


def _collected(searcher: Searcher, path: Path) -> list[Example]:
    found = collect(searcher, read_eval_set(path))
    print(f"{path}: {len(found)} searches, {sum(e.right for e in found)} with the first passage right")
    return found
