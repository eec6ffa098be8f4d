"""The DyT baseline of the paper's Table 1: tanh(alpha * x), alpha fitted per layer by least squares.

The loss sum (tanh(alpha x) - y)² is one-dimensional in alpha: a log-spaced grid over both signs brackets the
best alpha, golden-section search narrows the bracket, and Gauss-Newton steps finish it.
"""

from __future__ import annotations

import math

import numpy as np

GRID = np.concatenate([-np.logspace(-4, 3, 57)[::-1], [0.0], np.logspace(-4, 3, 57)])
GOLDEN = (math.sqrt(5) - 1) / 2


def dyt(alpha: float):
    """The DyT function for a fixed alpha, as a vectorized callable."""
    return lambda x: np.tanh(alpha * np.asarray(x, np.float64))


def _loss(alpha: float, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((np.tanh(alpha * x) - y) ** 2))


def fit_alpha(x: np.ndarray, y: np.ndarray, tol: float = 1e-10) -> float:
    """The alpha minimizing sum (tanh(alpha x) - y)²."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) == 0:
        raise ValueError("no points to fit")
    losses = [_loss(a, x, y) for a in GRID]
    i = int(np.argmin(losses))
    lo, hi = GRID[max(i - 1, 0)], GRID[min(i + 1, len(GRID) - 1)]
    a, b = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    fa, fb = _loss(a, x, y), _loss(b, x, y)
    for _ in range(200):
        if hi - lo <= tol * max(1.0, abs(lo) + abs(hi)):
            break
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - GOLDEN * (hi - lo)
            fa = _loss(a, x, y)
        else:
            lo, a, fa = a, b, fb
            b = lo + GOLDEN * (hi - lo)
            fb = _loss(b, x, y)
    alpha = (lo + hi) / 2
    for _ in range(5):  # Gauss-Newton: r = tanh(ax) - y, dr/da = x (1 - tanh²)
        t = np.tanh(alpha * x)
        jac = x * (1 - t * t)
        denom = float(jac @ jac)
        if denom <= 0:
            break
        step = float(jac @ (t - y)) / denom
        if _loss(alpha - step, x, y) > _loss(alpha, x, y):
            break
        alpha -= step
    return float(alpha)
