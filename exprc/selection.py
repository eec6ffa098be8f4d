"""Choosing one expression from a Pareto front: the one rule shared by layer files (`read_layers`) and `exprc evolve`.

A front is a list of points, each with a complexity (lower is simpler), a validation error and, where known, a
training error; NaN means unknown and never wins. The selections:

- `val`: the lowest validation error; ties go to the simpler point, then to the earlier one.
- `train`: the lowest training error; ties likewise.
- `simplest`: the lowest complexity; ties go to the lower validation error, then to the earlier point.
- `knee`: where the front bends. Of the non-dominated points (`pareto_front`), with complexity and log10 of the
  validation error each scaled to [0, 1] between the front's two ends, the point farthest below the chord that
  joins those ends. Of points equally far below (within `TOLERANCE`), the simpler. A front with no point
  strictly below its chord has no knee (every front of one or two points, and a front that is straight or bends
  the other way on these scales: each step in complexity buys at least as much as the one before); its most
  accurate point is chosen, as `val` would.

Errors are compared on a log scale because fits improve by orders of magnitude; an error of 0 counts as 1e-300.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SELECTIONS = ("val", "train", "simplest", "knee")
ALIASES = {"complexity": "simplest"}
TOLERANCE = 1e-9  # on the [0, 1] scales: distances this close are equal, and this far below the chord is "on" it
SMALLEST_ERROR = 1e-300


@dataclass(frozen=True)
class Point:
    complexity: float
    val: float  # validation error (Kozax fronts: their one fitness); NaN when unknown
    train: float = math.nan


def canonical(how: str) -> str | None:
    """The selection `how` names (aliases resolved), or None if it names none."""
    how = ALIASES.get(how, how)
    return how if how in SELECTIONS else None


def choose(points: Sequence[Point], how: str) -> int:
    """The index of the point that selection `how` picks from `points` (see the module docstring)."""
    name = canonical(how)
    if name is None:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, found {how!r}")
    if not points:
        raise ValueError("cannot choose from an empty front")
    order = range(len(points))
    if name == "val":
        return min(order, key=lambda i: (_worst_if_nan(points[i].val), _worst_if_nan(points[i].complexity), i))
    if name == "train":
        return min(order, key=lambda i: (_worst_if_nan(points[i].train), _worst_if_nan(points[i].complexity), i))
    if name == "simplest":
        return min(order, key=lambda i: (_worst_if_nan(points[i].complexity), _worst_if_nan(points[i].val), i))
    return knee_index([p.complexity for p in points], [p.val for p in points])


def pareto_front(complexity: Sequence[float], error: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, by increasing complexity: for each complexity the lowest error (the
    earlier of equals), then only those strictly lower than at every smaller complexity. Points whose complexity
    or error is not a finite number are not on the front."""
    ok = [i for i in range(len(complexity)) if math.isfinite(complexity[i]) and math.isfinite(error[i])]
    front: list[int] = []
    for i in sorted(ok, key=lambda i: (complexity[i], error[i], i)):
        if front and complexity[front[-1]] == complexity[i]:
            continue  # a worse (or later) point of the same complexity
        if not front or error[i] < error[front[-1]]:
            front.append(i)
    return front


def knee_index(complexity: Sequence[float], error: Sequence[float]) -> int:
    """The index of the knee of the points' front (see the module docstring)."""
    complexity = [float(c) for c in complexity]
    error = [float(e) for e in error]
    front = pareto_front(complexity, error)
    if not front:  # no point with a finite error: fall back on `val`'s order
        return choose([Point(c, e) for c, e in zip(complexity, error, strict=True)], "val")
    most_accurate = front[-1]
    if len(front) < 3:
        return most_accurate
    xs = [complexity[i] for i in front]
    ys = [math.log10(max(error[i], SMALLEST_ERROR)) for i in front]
    width, height = xs[-1] - xs[0], ys[0] - ys[-1]
    if height <= 0:  # errors below SMALLEST_ERROR all count as it
        return most_accurate
    # scaled: x from 0 (simplest) to 1, y from 1 (simplest, worst) to 0; the chord is y = 1 - x
    below = [(1 - (x - xs[0]) / width) - (y - ys[-1]) / height for x, y in zip(xs, ys, strict=True)]
    farthest = max(below)
    if farthest <= TOLERANCE:
        return most_accurate
    return next(i for i, d in zip(front, below, strict=True) if d >= farthest - TOLERANCE)


def _worst_if_nan(v: float) -> float:
    return math.inf if math.isnan(v) else v
