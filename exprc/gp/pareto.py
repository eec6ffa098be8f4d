"""The Pareto front over (complexity, fitness), kept across generations, and the choice of one point from it.

Complexity takes few distinct values, so the front is: for each complexity the fittest tree seen, then only
those strictly fitter than every simpler one. Plain numpy, updated once per generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

SELECTIONS = ("val", "knee")


@dataclass
class ParetoArchive:
    """The best (lowest-fitness) tree seen at each complexity; `max_fitness` and non-finite mean invalid."""

    max_fitness: float
    _best: dict[float, tuple[float, Any]] = None  # complexity -> (fitness, tree)

    def __post_init__(self):
        self._best = {}

    def add(self, fitness: np.ndarray, complexity: np.ndarray, trees: np.ndarray) -> None:
        fitness = np.asarray(fitness, dtype=np.float64).reshape(-1)
        complexity = np.asarray(complexity, dtype=np.float64).reshape(-1)
        ok = np.isfinite(fitness) & (fitness < self.max_fitness)
        for c in np.unique(complexity[ok]):
            idx = np.flatnonzero(ok & (complexity == c))
            i = idx[np.argmin(fitness[idx])]
            key = float(c)
            if key not in self._best or fitness[i] < self._best[key][0]:
                self._best[key] = (float(fitness[i]), np.array(trees[i]))

    def front(self) -> list[tuple[float, float, Any]]:
        """(complexity, fitness, tree) of the non-dominated trees, by increasing complexity."""
        out, best = [], math.inf
        for c in sorted(self._best):
            f, tree = self._best[c]
            if f < best:
                out.append((c, f, tree))
                best = f
        return out


def knee_index(complexity: Sequence[float], fitness: Sequence[float]) -> int:
    """The front point farthest below the line joining its two ends, both axes scaled to [0, 1].

    Fitness is compared on a log scale (fits improve by orders of magnitude). With fewer than three points,
    the fittest.
    """
    c = np.asarray(complexity, dtype=np.float64)
    f = np.log10(np.maximum(np.asarray(fitness, dtype=np.float64), 1e-300))
    if len(c) < 3:
        return int(np.argmin(f))
    order = np.argsort(c)
    c, f = c[order], f[order]
    cs = (c - c[0]) / ((c[-1] - c[0]) or 1.0)
    fs = (f - f.min()) / ((f.max() - f.min()) or 1.0)
    # distance below the chord from the simplest to the most complex point (positive = below)
    chord = fs[0] + (fs[-1] - fs[0]) * cs
    return int(order[int(np.argmax(chord - fs))])


def select(members: Sequence[dict], how: str) -> dict:
    """One member of a front (dicts with complexity and val_fitness): lowest validation fitness, or the knee."""
    if how not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, found {how!r}")
    if not members:
        raise ValueError("empty Pareto front")
    if how == "val":
        return min(members, key=lambda m: (m["val_fitness"], m["complexity"]))
    return members[knee_index([m["complexity"] for m in members], [m["val_fitness"] for m in members])]
