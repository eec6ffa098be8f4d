"""The Pareto front over (complexity, fitness), kept across generations, and the choice of one point from it.

Complexity takes few distinct values, so the front is: for each complexity the fittest tree seen, then only
those strictly fitter than every simpler one (`exprc.selection.pareto_front`). Plain numpy, updated once per
generation. Choosing a member (`select`, the knee included) is `exprc.selection`'s, shared with layer files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..selection import Point, choose, knee_index, pareto_front

__all__ = ["SELECTIONS", "ParetoArchive", "knee_index", "select"]

SELECTIONS = ("val", "knee")  # what `exprc evolve --select` offers; `select` takes every selection


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
        complexity = sorted(self._best)
        fitness = [self._best[c][0] for c in complexity]
        return [(complexity[i], fitness[i], self._best[complexity[i]][1]) for i in pareto_front(complexity, fitness)]


def select(members: Sequence[dict], how: str) -> dict:
    """One member of a front (dicts with complexity, val_fitness and train_fitness; None for an unknown fitness),
    chosen as `exprc.selection` defines: `val` (lowest validation fitness), `knee`, `train` or `simplest`.
    An unknown selection or an empty front is a ValueError."""
    points = [Point(_number(m["complexity"]), _number(m.get("val_fitness")), _number(m.get("train_fitness")))
              for m in members]
    return members[choose(points, how)]


def _number(v: Any) -> float:
    return math.nan if v is None else float(v)
