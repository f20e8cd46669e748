"""The confidence stage: how likely it is that the first passage answers the question, and the
level shown to the reader. The one place confidence is decided, for single questions and
follow-ups alike.

The search hands over a few `Signals` it already has (no model call); a `Calibration` fitted
by `qa-calibrate` (index/calibrate.py) turns them into a probability with a logistic
regression; `decide` sets the level:

- "none": nothing shown, when no passage is even loosely related (cosine floor);
- "high": a short answer, only when the probability reaches the calibration's threshold for
  the policy's target precision (`Calibration.threshold`) and the answer stage found a
  sentence that can answer;
- "low": the passages, shown as possibly related, otherwise, and always when no calibration
  applies to the index's model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from index.errors import QAError
from index.models import EmbeddingSpec, RerankSpec
from index.records import Confidence

CALIBRATION_FILE = "calibration.json"  # in the index folder, beside CURRENT
CALIBRATION_FORMAT = 1


@dataclass(frozen=True)
class Signals:
    """What the search knows about its first passage, each a number the calibration weighs.

    cosine: the first passage's cosine with the question (for a follow-up, the larger of that
        and its cosine with the follow-up read after the question that set its context);
    margin: the first passage's fused score minus the second's (1 when it is alone);
    agree: 1 when the dense and the lexical retriever each rank the first passage first;
    dense_rank, lexical_rank: 1 / the rank each retriever alone gives the first passage (0
        when the lexical one finds none of its words);
    same_article: the share of the first three passages that are from the first's article;
    coverage: the share of the question's idf weight that the first passage holds;
    sentence_coverage: the same share for the sentence the answer stage chose (0 without one);
    followup: 1 for a follow-up searched within its conversation's articles."""

    cosine: float
    margin: float
    agree: float
    dense_rank: float
    lexical_rank: float
    same_article: float
    coverage: float
    sentence_coverage: float
    followup: float

    def values(self, names: tuple[str, ...]) -> list[float]:
        return [float(getattr(self, name)) for name in names]


FEATURES: tuple[str, ...] = tuple(f.name for f in fields(Signals))


# A threshold below the target is trusted only on this many cross-validated answers.
MIN_HELD_OUT_ANSWERS = 20


@dataclass(frozen=True)
class Calibration:
    """A logistic regression over `Signals`, fitted for one configuration of models: probability =
    1 / (1 + exp(-(intercept + sum(weight x signal)))).

    The configuration is the embedding (`embedding`: model, provider and prefixes; None in a
    calibration written before they were recorded: `model` with no prefixes) and the
    reranker (`reranker`, None for none): the signals' scale changes with each of them.

    `held_out` is the fit's cross-validated precision curve on the archive's own single
    questions: (threshold, answered, right) when the first passage is answered only at
    probability >= threshold, each question predicted by a fit that did not see it;
    `held_out_followups` the same for follow-up turns, which the target holds for too. Empty
    for a calibration written without them: the threshold is then the target itself."""

    model: str
    features: tuple[str, ...]
    weights: tuple[float, ...]
    intercept: float
    fitted_on: dict[str, Any]
    held_out: tuple[tuple[float, int, int], ...] = ()
    held_out_followups: tuple[tuple[float, int, int], ...] = ()
    embedding: EmbeddingSpec | None = None
    reranker: RerankSpec | None = None

    @property
    def embedding_spec(self) -> EmbeddingSpec:
        return self.embedding or EmbeddingSpec("sentence-transformers", self.model)

    def describe(self) -> str:
        """The configuration it was fitted for, in words."""
        reranker = f", reranked by {self.reranker.describe()}" if self.reranker else ""
        return self.embedding_spec.describe() + reranker

    def probability(self, signals: Signals) -> float:
        z = self.intercept + sum(w * v for w, v in zip(self.weights, signals.values(self.features)))
        return 1.0 / (1.0 + math.exp(-z))

    def threshold(self, target: float, followup: bool = False) -> float:
        """The probability "high" needs so that answers (to follow-ups, or to single questions)
        are right at the `target` rate: the target itself, lowered along the held-out curve
        for as long as the answers at or above each lower threshold (at least
        MIN_HELD_OUT_ANSWERS of them) were right at that rate. A probability is one question's
        chance; precision is over all answers given, most of them well above the threshold,
        which is why a lower threshold can keep the target."""
        chosen = target
        curve = self.held_out_followups if followup else self.held_out
        for threshold, answered, right in sorted(curve, reverse=True):
            if threshold > target:
                continue
            if answered < MIN_HELD_OUT_ANSWERS or right < target * answered:
                break
            chosen = threshold
        return chosen

    def to_json(self) -> str:
        data = asdict(self) | {"format": CALIBRATION_FORMAT}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> Calibration:
        try:
            data = json.loads(text)
            if data.get("format") != CALIBRATION_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {CALIBRATION_FORMAT}")
            calibration = cls(
                model=str(data["model"]),
                features=tuple(data["features"]),
                weights=tuple(float(w) for w in data["weights"]),
                intercept=float(data["intercept"]),
                fitted_on=dict(data.get("fitted_on") or {}),
                held_out=_curve(data.get("held_out")),
                held_out_followups=_curve(data.get("held_out_followups")),
                embedding=EmbeddingSpec(**data["embedding"]) if data.get("embedding") else None,
                reranker=RerankSpec(**data["reranker"]) if data.get("reranker") else None,
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise QAError(f"{source}: not a calibration ({exc})") from exc
        unknown = set(calibration.features) - set(FEATURES)
        if unknown or len(calibration.weights) != len(calibration.features):
            raise QAError(f"{source}: features {sorted(unknown)} unknown or weights do not match")
        return calibration


def _curve(rows) -> tuple[tuple[float, int, int], ...]:
    return tuple((float(t), int(a), int(r)) for t, a, r in rows or ())


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibration a searcher uses (None: it never answers "high") and why, in words a
    reader of /readyz or qa-ask can act on."""

    calibration: Calibration | None
    reason: str


def shipped_calibration() -> Calibration:
    """The calibration fitted for the default model, shipped with the package."""
    text = resources.files("index").joinpath("calibration_default.json").read_text(encoding="utf-8")
    return Calibration.from_json(text, "index/calibration_default.json")


def choose_calibration(
    index_dir: Path, embedding: EmbeddingSpec, reranker: RerankSpec | None = None
) -> CalibrationChoice:
    """The index's own calibration when it was fitted for this embedding and reranker; else
    the shipped one for the default model with no prefixes and no reranker; else none. A
    calibration fitted for another configuration is refused: its weights say nothing about
    this one's cosines and orders."""
    path = index_dir / CALIBRATION_FILE
    configured = embedding.describe() + (f", reranked by {reranker.describe()}" if reranker else "")
    refused = ""
    if path.is_file():
        own = Calibration.from_json(path.read_text(encoding="utf-8"), str(path))
        if own.embedding_spec == embedding and own.reranker == reranker:
            return CalibrationChoice(own, f"calibrated for {configured} by qa-calibrate ({path})")
        refused = f"{path} was fitted for {own.describe()}, not {configured}, and is not used; "
    if embedding.is_default and reranker is None:
        return CalibrationChoice(shipped_calibration(), refused + f"the calibration shipped for {embedding.model}")
    return CalibrationChoice(
        None,
        refused + f"no calibration for {configured}: answers are never 'high' until "
        f"`qa-calibrate LABELLED.jsonl --index {index_dir}` fits one with this configuration",
    )


def calibration_stamp(index_dir: Path) -> int | None:
    """When the index folder's calibration was last written (None: it has none), so that a
    server sees `qa-calibrate`'s work without waiting for a new index version."""
    try:
        return (index_dir / CALIBRATION_FILE).stat().st_mtime_ns
    except OSError:
        return None


def save_calibration(index_dir: Path, calibration: Calibration) -> Path:
    """Write `calibration` into the index folder, replacing any earlier one in one step."""
    path = index_dir / CALIBRATION_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(calibration.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class ConfidencePolicy:
    """The confidence knobs (built from `Settings` by `index/policy.py`).

    target_precision: the share of "high" answers that should be right (the calibration
        turns it into the probability needed, `Calibration.threshold`);
    nothing_below: below this cosine no passage is shown;
    scoped_nothing_below: the same for a search the asker (filters) or the conversation (a
        follow-up) narrowed: asking "in this article" should show what the article has."""

    target_precision: float = 0.95
    nothing_below: float = 0.25
    scoped_nothing_below: float = 0.2


def shows_nothing(closest: float, scoped: bool, policy: ConfidencePolicy) -> bool:
    """Whether no passage is close enough to show (`closest`: the best cosine among them)."""
    return closest < (policy.scoped_nothing_below if scoped else policy.nothing_below)


def decide(
    signals: Signals | None,
    closest: float,
    scoped: bool,
    has_answer: bool,
    calibration: Calibration | None,
    policy: ConfidencePolicy,
) -> tuple[Confidence, float | None]:
    """The level and the probability that the first passage answers (None with no passages
    or no calibration). `closest` is the best cosine among the passages to be shown;
    `has_answer` says the answer stage found a sentence that can answer."""
    if signals is None or shows_nothing(closest, scoped, policy):
        return "none", None
    if calibration is None:
        return "low", None
    probability = calibration.probability(signals)
    if has_answer and probability >= calibration.threshold(policy.target_precision, bool(signals.followup)):
        return "high", probability
    return "low", probability
