"""Paired comparison of two `exprc evolve` outputs made from the same mappings, layers and seeds, and the
straight-line and DyT baselines they must beat.

A pair is one (layer, seed): the validation fitness of the expression that seed's search chose (`seeds` in the
layer's entry), new minus old. The verdict of bench/gp_quality.py: the median pair difference is <= 0, and no
layer's best-of-seeds validation fitness (what `exprc evolve` writes for the layer) is worse than the old one by
more than `margin` (relative).
"""

from __future__ import annotations

import numpy as np

from .dyt import dyt, fit_alpha
from .metrics import anchor, score


def paired(old: dict, new: dict, margin: float) -> dict:
    """Per-pair and per-layer differences of validation fitness (new - old) and the verdict."""
    pairs, layers = [], {}
    for name, entry in new["layers"].items():
        if name not in old["layers"]:
            continue
        before = {s["seed"]: s for s in old["layers"][name]["seeds"]}
        for s in entry["seeds"]:
            if s["seed"] in before:
                b = before[s["seed"]]
                pairs.append({"layer": name, "seed": s["seed"], "old": b["val_fitness"], "new": s["val_fitness"],
                              "diff": s["val_fitness"] - b["val_fitness"], "old_r2": b["r2"], "new_r2": s["r2"]})
        o, n = old["layers"][name]["val_fitness"], entry["val_fitness"]
        layers[name] = {"old": o, "new": n, "relative": (n - o) / o if o > 0 else 0.0,
                        "old_r2": old["layers"][name]["r2"], "new_r2": entry["r2"]}
    if not pairs:
        raise ValueError("the two outputs share no (layer, seed)")
    diffs = np.array([p["diff"] for p in pairs])
    worst = max(layers, key=lambda k: layers[k]["relative"])
    return {"pairs": pairs, "layers": layers, "median_diff": float(np.median(diffs)),
            "mean_diff": float(diffs.mean()), "new_better_pairs": int((diffs < 0).sum()), "n_pairs": len(pairs),
            "worst_layer": worst, "worst_relative": layers[worst]["relative"], "margin": margin,
            "kept": bool(np.median(diffs) <= 0 and layers[worst]["relative"] <= margin)}


def baselines(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, gamma: float) -> dict:
    """R² (and composite fitness) on the validation points of a least-squares line and of DyT, both fitted on
    the training points."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    slope, intercept = np.polyfit(x[train], y[train], 1)
    alpha = fit_alpha(x[train], y[train])
    delta = anchor(x[train])
    line = score(lambda v: slope * v + intercept, x[val], y[val], delta, gamma)
    tanh = score(dyt(alpha), x[val], y[val], delta, gamma)
    return {"line": {"slope": float(slope), "intercept": float(intercept), "r2": line.r2, "mse": line.mse},
            "dyt": {"alpha": alpha, "r2": tanh.r2, "mse": tanh.mse}}
