"""How far a search's confidence can be trusted: pure functions over (probability, right)
pairs and (confidence level, right) pairs, with no knowledge of searches or files.

`index/evaluate.py` builds the pairs ("right" = the first passage answers the question; an
out-of-scope question is never right), and `qa-calibrate` prints its cross-validated
precision with the same `curve_point`, so the figures a fit is judged by and the figures
`qa-eval` prints cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Thresholds a deployment might answer at: the curve shows what each would cost in coverage.
CURVE_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class CalibrationBin:
    """The pairs whose probability falls in [low, high) (the last bin includes 1.0)."""

    low: float
    high: float
    count: int
    mean_probability: float
    share_right: float


@dataclass(frozen=True)
class CurvePoint:
    """Answering only when probability >= threshold: how many are answered, how many of
    those are right, and the two ratios (None where a ratio has no denominator)."""

    threshold: float
    answered: int
    right: int
    precision: float | None
    coverage: float | None


@dataclass(frozen=True)
class LevelRow:
    """One confidence level: how many results had it and how many had the first passage right."""

    level: str
    results: int
    right: int

    @property
    def share_right(self) -> float | None:
        return self.right / self.results if self.results else None


def bin_of(probability: float, bins: int = CALIBRATION_BINS) -> int:
    """The equal-width bin of `probability`; 1.0 belongs to the last bin, not one of its own."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], got {probability}")
    return min(int(probability * bins), bins - 1)


def calibration_bins(
    pairs: Sequence[tuple[float, bool]], bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """The non-empty equal-width bins of `pairs`, lowest first (a reliability diagram's points)."""
    grouped: dict[int, list[tuple[float, bool]]] = {}
    for probability, right in pairs:
        grouped.setdefault(bin_of(probability, bins), []).append((probability, right))
    return [
        CalibrationBin(
            low=index / bins,
            high=(index + 1) / bins,
            count=len(members),
            mean_probability=sum(p for p, _ in members) / len(members),
            share_right=sum(r for _, r in members) / len(members),
        )
        for index, members in sorted(grouped.items())
    ]


def expected_calibration_error(
    pairs: Sequence[tuple[float, bool]], bins: int = CALIBRATION_BINS
) -> float | None:
    """|mean probability - share right| per bin, weighted by the bin's share of the pairs:
    0 when every probability says how often it is right. None without pairs, where 0 would
    claim a calibration that was never measured."""
    if not pairs:
        return None
    return sum(
        b.count / len(pairs) * abs(b.mean_probability - b.share_right)
        for b in calibration_bins(pairs, bins)
    )


def curve_point(
    pairs: Sequence[tuple[float, bool]], threshold: float, answerable: int
) -> CurvePoint:
    """Precision and coverage when only pairs with probability >= `threshold` are answered.

    `answerable` is the number of questions that have an answer at all, which the pairs
    cannot tell (an out-of-scope question's pair is simply not right), and which includes
    questions whose results had no probability."""
    answered = [right for probability, right in pairs if probability >= threshold]
    right = sum(answered)
    return CurvePoint(
        threshold=threshold,
        answered=len(answered),
        right=right,
        precision=right / len(answered) if answered else None,
        coverage=right / answerable if answerable else None,
    )


def precision_coverage_curve(
    pairs: Sequence[tuple[float, bool]],
    answerable: int,
    thresholds: Sequence[float] = CURVE_THRESHOLDS,
) -> list[CurvePoint]:
    """One `curve_point` per threshold, in the order given."""
    return [curve_point(pairs, threshold, answerable) for threshold in thresholds]


def level_table(pairs: Sequence[tuple[str, bool]], levels: Sequence[str]) -> list[LevelRow]:
    """For each level in `levels` (every one, even when no result had it): how many results
    had that level and how many of them were right. A level outside `levels` is an error:
    it would otherwise vanish from the table."""
    unknown = {level for level, _ in pairs} - set(levels)
    if unknown:
        raise ValueError(f"levels {sorted(unknown)} are not among {list(levels)}")
    return [
        LevelRow(
            level=level,
            results=sum(1 for seen, _ in pairs if seen == level),
            right=sum(1 for seen, right in pairs if seen == level and right),
        )
        for level in levels
    ]


def rounded(value: float | None, places: int = 4) -> float | None:
    """`value` rounded for a report; None (a ratio without a denominator) stays None."""
    return None if value is None else round(value, places)


def reliability_report(
    level_pairs: Sequence[tuple[str, bool]],
    levels: Sequence[str],
    probability_pairs: Sequence[tuple[float, bool]],
    answerable: int,
) -> dict[str, Any]:
    """The JSON-ready figures: `reliability` (per level: results, first_passage_right,
    share_right), `with_probability` (how many pairs had one), `expected_calibration_error`
    and `precision_coverage_curve` (both None without probabilities: nothing was measured)."""
    curve = precision_coverage_curve(probability_pairs, answerable) if probability_pairs else None
    return {
        "reliability": {
            row.level: {"results": row.results, "first_passage_right": row.right,
                        "share_right": rounded(row.share_right)}
            for row in level_table(level_pairs, levels)
        },
        "with_probability": len(probability_pairs),
        "expected_calibration_error": rounded(expected_calibration_error(probability_pairs)),
        "precision_coverage_curve": None if curve is None else [
            {"threshold": point.threshold, "answered": point.answered, "right": point.right,
             "precision": rounded(point.precision), "coverage": rounded(point.coverage)}
            for point in curve
        ],
    }
