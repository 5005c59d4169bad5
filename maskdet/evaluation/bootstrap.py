"""How sure is a figure measured on 128 photos? Bootstrap over photos.

The val and test splits hold 128 photos each, and the rare class 14-17 of them: a single photo can move mAP50
by 0.01. Resampling the photos with replacement (each round draws 128 photos from the 128) and scoring every
round with the validator's own AP gives an interval for each figure. Models compared on the same rounds
(a paired bootstrap: the same photos drawn for both) give an interval for their difference, which is what
a choice between them rests on: a difference whose interval holds 0 is not one the split can tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskdet.evaluation.pipeline_map import PhotoMatches, score_matches


@dataclass(frozen=True)
class Interval:
    estimate: float  # on the split itself
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class Comparison:
    """Model B against model A on the same resampled photos."""

    difference: Interval  # of mAP50, B - A
    difference_50_95: Interval
    b_better: float  # share of rounds where B's mAP50 is higher


@dataclass(frozen=True)
class BootstrapResult:
    rounds: int
    level: float
    map50: dict[str, Interval]
    map50_95: dict[str, Interval]
    against_first: dict[str, Comparison]  # every model but the first, against the first


def resampled_photos(photos: int, rounds: int, seed: int = 0) -> np.ndarray:
    """(rounds, photos) photo indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, photos, size=(rounds, photos))


def resampled_scores(matches: list[PhotoMatches], draws: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(rounds, 2): mAP50 and mAP50-95 of each round's photos."""
    scores = [score_matches([matches[i] for i in draw], names) for draw in draws]
    return np.array([(s.map50, s.map50_95) for s in scores])


def interval(estimate: float, samples: np.ndarray, level: float) -> Interval:
    tail = (1 - level) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return Interval(float(estimate), float(low), float(high))


def bootstrap(matches: dict[str, list[PhotoMatches]], names: tuple[str, ...], rounds: int = 1000,
              level: float = 0.95, seed: int = 0) -> BootstrapResult:
    """Intervals for each model's mAP50 and mAP50-95, and for each model's difference from the first one
    (dicts keep their order). Every model must have been run on the same photos, in the same order."""
    if not matches:
        raise ValueError("no model to bootstrap")
    counts = {len(m) for m in matches.values()}
    if len(counts) != 1:
        raise ValueError(f"the models were scored on different numbers of photos: {sorted(counts)}")
    draws = resampled_photos(counts.pop(), rounds, seed)
    point = {key: score_matches(m, names) for key, m in matches.items()}
    samples = {key: resampled_scores(m, draws, names) for key, m in matches.items()}
    map50 = {key: interval(point[key].map50, samples[key][:, 0], level) for key in matches}
    map50_95 = {key: interval(point[key].map50_95, samples[key][:, 1], level) for key in matches}
    first, *others = matches
    against = {}
    for key in others:
        diff = samples[key] - samples[first]
        against[key] = Comparison(interval(point[key].map50 - point[first].map50, diff[:, 0], level),
                                  interval(point[key].map50_95 - point[first].map50_95, diff[:, 1], level),
                                  float((diff[:, 0] > 0).mean()))
    return BootstrapResult(rounds, level, map50, map50_95, against)
