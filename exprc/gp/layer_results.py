"""From finished searches to the `exprc.layers/1` document: choose an expression per layer, score it and DyT.

A layer's entry keeps everything needed to choose again without searching again: every seed's Pareto front
(`pareto`, each member tagged with its seed), one line per seed (`seeds`), and for the chosen expression its
fitness, MSE and R² on the validation points, next to the DyT baseline's (`dyt`). The document's `gp` section
records the search settings, the mappings file's hash (a rerun refuses to mix results from other data or
settings) and the Table 1 summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic_write import atomic_write
from ..errors import ExprcError
from .dyt import dyt, fit_alpha
from .mappings import LayerMapping
from .metrics import anchor, score
from .pareto import select
from .search import SearchConfig, split_train_val

FORMAT = "exprc.layers/1"


def finalize_layer(mapping: LayerMapping, fronts: dict[int, list[dict]], config: SearchConfig, how: str,
                   seconds: dict[int, float] | None = None) -> dict[str, Any]:
    """The layer's entry: per seed the front's choice (`how`: val or knee), overall the best of those."""
    seconds = seconds or {}
    per_seed = []
    for seed in sorted(fronts):
        if not fronts[seed]:
            continue
        pick = select(fronts[seed], how)
        per_seed.append({k: pick[k] for k in ("seed", "expr", "complexity", "nodes", "train_fitness", "val_fitness",
                                               "mse", "r2")} | {"seconds": seconds.get(seed)})
    if not per_seed:
        raise ExprcError("no seed produced a usable expression")
    best = min(per_seed, key=lambda s: (s["val_fitness"], s["complexity"]))
    train, val = split_train_val(len(mapping.x), config.val_fraction, config.split_seed)
    x, y = mapping.x.astype(np.float64), mapping.y.astype(np.float64)
    alpha = fit_alpha(x[train], y[train])
    base = score(dyt(alpha), x[val], y[val], anchor(x[train]), config.gamma)
    entry = {k: best[k] for k in ("expr", "val_fitness", "train_fitness", "seed", "complexity", "nodes", "mse", "r2")}
    entry["dyt"] = {"alpha": alpha, "val_fitness": base.fitness, "mse": base.mse, "r2": base.r2}
    entry["seeds"] = per_seed
    entry["pareto"] = [m for seed in sorted(fronts) for m in fronts[seed]]
    return entry


def fronts_of(entry: dict) -> dict[int, list[dict]]:
    """The per-seed fronts stored in a layer entry (the inverse of `finalize_layer`'s `pareto`)."""
    fronts: dict[int, list[dict]] = {s["seed"]: [] for s in entry.get("seeds", [])}
    for m in entry.get("pareto", []):
        fronts.setdefault(m["seed"], []).append(m)
    return fronts


def summarize(entries: dict[str, dict]) -> dict[str, Any]:
    """Table 1: mean MSE and R² over layers for DyT and GP; GP also as mean ± std over seeds."""
    if not entries:
        return {}
    dyt_mse = [e["dyt"]["mse"] for e in entries.values()]
    dyt_r2 = [e["dyt"]["r2"] for e in entries.values()]
    out = {
        "layers": len(entries),
        "dyt": {"mean_mse": float(np.mean(dyt_mse)), "mean_r2": float(np.mean(dyt_r2))},
        "gp": {"mean_mse": float(np.mean([e["mse"] for e in entries.values()])),
               "mean_r2": float(np.mean([e["r2"] for e in entries.values()]))},
    }
    seeds = sorted({s["seed"] for e in entries.values() for s in e["seeds"]})
    per_seed = []
    for seed in seeds:
        rows = [s for e in entries.values() for s in e["seeds"] if s["seed"] == seed]
        if len(rows) == len(entries):  # only seeds that cover every layer
            per_seed.append((np.mean([r["mse"] for r in rows]), np.mean([r["r2"] for r in rows])))
    if per_seed:
        mses, r2s = np.array(per_seed).T
        out["gp_seeds"] = {"seeds": len(per_seed), "mean_mse": float(mses.mean()), "std_mse": float(mses.std()),
                           "mean_r2": float(r2s.mean()), "std_r2": float(r2s.std())}
    return out


def layers_document(model: str | None, clip: tuple[float, float], entries: dict[str, dict],
                    gp_meta: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "model": model, "clip": list(clip), "layers": entries,
            "gp": {**gp_meta, "summary": summarize(entries)}}


def write_json_atomic(path: str | os.PathLike, doc: dict) -> None:
    """Write `doc` as JSON to a temporary file beside `path`, then rename it into place (mode as the umask says)."""
    with atomic_write(path) as f:
        json.dump(_json_safe(doc), f, indent=1, allow_nan=False)
        f.write("\n")


def _json_safe(v):
    """Non-finite floats (an R² of -inf, say) become null: JSON has no spelling for them."""
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def read_document(path: str | os.PathLike) -> dict | None:
    """A previous `exprc evolve` output, or None if there is none."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExprcError(f"cannot read the existing output to resume from it: {e}", where=str(path)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("gp"), dict):
        raise ExprcError("exists but is not an `exprc evolve` output; choose another -o or remove it",
                         where=str(path))
    return doc
