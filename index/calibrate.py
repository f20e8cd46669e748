"""qa-calibrate: fit the confidence stage's calibration on labelled questions and store it
with the index.

Each labelled question (the `qa-eval` format: single questions and conversations, with
`must_contain_any` spans) is searched as the service searches it; the signals the confidence
stage read are kept with whether the first passage answers (an out-of-scope question's never
does). A logistic regression (scikit-learn, L2-regularised, its strength chosen by
cross-validated log loss on the fitting questions) maps the signals to that probability. Logistic rather than isotonic: six signals, a few hundred questions, and weights
a reader can inspect and argue with; isotonic regression would need one score to begin with
and many more labels per step of its staircase.

    qa-calibrate TUNE.jsonl [MORE.jsonl ...] --index IDX

Fit on questions you do not report figures on; `--folds` prints what cross-validation on the
fitting questions says the target precision buys, for a first look."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.confidence import FEATURES, Calibration, CalibrationChoice, Signals, save_calibration
from index.evaluate import EvalSet, first_passage_right, read_eval_set
from index.search import Searcher

# Inverse regularisation strengths tried; cross-validated log loss on the fitting questions
# picks one (the signals all lie in [0, 1], so one scale suits them all).
STRENGTHS = (0.1, 1.0, 10.0, 100.0)


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


def fit(examples: Sequence[Example], model: str, fitted_on: dict, features: tuple[str, ...] = FEATURES) -> Calibration:
    """A logistic regression of rightness on the signals."""
    # Only qa-calibrate needs scikit-learn: a served search applies the stored weights.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    x, y = _matrix(examples, features)
    if min(y.sum(), len(y) - y.sum()) < 5:
        raise ValueError(
            f"{len(y)} searches with {int(y.sum())} first passages right: at least 5 right and "
            "5 wrong are needed to fit on"
        )
    search = GridSearchCV(LogisticRegression(max_iter=1000), {"C": list(STRENGTHS)}, cv=5, scoring="neg_log_loss")
    regression = search.fit(x, y).best_estimator_
    return Calibration(
        model=model,
        features=features,
        weights=tuple(round(float(w), 6) for w in regression.coef_[0]),
        intercept=round(float(regression.intercept_[0]), 6),
        fitted_on=fitted_on | {"strength_c": float(regression.C)},
    )


def cross_validated(examples: Sequence[Example], folds: int, model: str) -> list[tuple[float, bool]]:
    """(probability, right) for each example from a calibration fitted without its fold."""
    order = np.arange(len(examples)) % folds
    pairs: list[tuple[float, bool]] = []
    for fold in range(folds):
        train = [e for e, f in zip(examples, order) if f != fold]
        calibration = fit(train, model, {})
        pairs += [(calibration.probability(e.signals), e.right) for e, f in zip(examples, order) if f == fold]
    return pairs


def _matrix(examples: Sequence[Example], features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([e.signals.values(features) for e in examples], dtype=np.float64)
    y = np.array([e.right for e in examples], dtype=np.int64)
    return x, y


def precision_at(pairs: Sequence[tuple[float, bool]], threshold: float) -> tuple[int, float | None]:
    """How many pairs reach `threshold`, and the share of them that are right."""
    kept = [right for p, right in pairs if p >= threshold]
    return len(kept), (sum(kept) / len(kept) if kept else None)


def main(argv: list[str] | None = None) -> int:
    from index.cli import _open, run_cli  # the CLIs share how an index is opened and errors shown

    parser = argparse.ArgumentParser(prog="qa-calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("labelled", type=Path, nargs="+", help="JSONL files of labelled questions (qa-eval's format)")
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--out", type=Path, help="write the calibration here instead of into the index folder")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds for the printed estimate (0: none)")
    args = parser.parse_args(argv)
    args.mode = None

    def body() -> int:
        searcher = _open(args, CalibrationChoice(None, "being fitted"))
        model = searcher.index.manifest.model
        examples: list[Example] = []
        for path in args.labelled:
            found = collect(searcher, read_eval_set(path))
            print(f"{path}: {len(found)} searches, {sum(e.right for e in found)} with the first passage right")
            examples += found
        fitted_on = {
            "files": [p.name for p in args.labelled],
            "searches": len(examples),
            "right": sum(e.right for e in examples),
            "date": dt.date.today().isoformat(),
        }
        calibration = fit(examples, model, fitted_on)
        for name, weight in zip(calibration.features, calibration.weights):
            print(f"  {name:>18} {weight:+.3f}")
        print(f"  {'intercept':>18} {calibration.intercept:+.3f}")
        if args.folds > 1:
            pairs = cross_validated(examples, args.folds, model)
            target = searcher.policy.confidence.target_precision
            kept, precision = precision_at(pairs, target)
            shown = "-" if precision is None else f"{precision:.3f}"
            print(f"cross-validated ({args.folds} folds, on the fitting questions): {kept} of "
                  f"{len(pairs)} reach {target}, precision {shown}")
        path = args.out or save_calibration(searcher.index.path.parent.parent, calibration)
        if args.out:
            args.out.write_text(calibration.to_json(), encoding="utf-8")
        print(f"calibration for {model} written to {path}")
        return 0

    return run_cli("qa-calibrate", body)
