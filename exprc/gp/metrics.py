"""How well a function fits a mapping, in float64 numpy: MSE, R², and the search's composite fitness.

fitness = MSE(y, f(x)) + gamma * mean(f(-delta)², f(delta)²), the paper's equation (3): the second term pulls
the function toward zero far outside the data (delta = 2 max|x_train|), as LayerNorm's output is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAMMA = 0.005  # the paper's weight of the pull-to-zero penalty


def anchor(x_train: np.ndarray) -> float:
    """delta = 2 max|x_train|, where the penalty looks."""
    return 2.0 * float(np.max(np.abs(x_train)))


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(pred, np.float64) - np.asarray(y, np.float64)) ** 2))


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination (for a constant y: 1 if the fit is exact, else 0)."""
    y = np.asarray(y, np.float64)
    ss_res = float(np.sum((np.asarray(pred, np.float64) - y) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


@dataclass(frozen=True)
class Fit:
    fitness: float  # the composite search objective
    mse: float
    r2: float

    def as_json(self) -> dict:
        return {"fitness": _finite(self.fitness), "mse": _finite(self.mse), "r2": _finite(self.r2)}


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def score(f, x: np.ndarray, y: np.ndarray, delta: float, gamma: float = GAMMA) -> Fit:
    """Score the vectorized function `f` (float64 array in, array out) on points (x, y)."""
    with np.errstate(all="ignore"):
        pred = np.asarray(f(np.asarray(x, np.float64)), np.float64)
        tails = np.asarray(f(np.array([-delta, delta])), np.float64)
        m = mse(y, pred)
        fitness = m + gamma * float(np.mean(tails ** 2))
    return Fit(fitness if np.isfinite(fitness) else np.inf, m if np.isfinite(m) else np.inf, r2(y, pred))
