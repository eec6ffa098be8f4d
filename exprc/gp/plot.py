"""The paper's Figure 6: every layer's mapping as a scatter, with the GP expression and the DyT curve over it."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from ..errors import ExprcError
from ..frontend.parse import parse
from ..ir import evaluate
from .mappings import Mappings

COLUMNS = 5
SCATTER_POINTS = 5000  # per panel; 50,000 points draw slowly and look the same


def _layer_entries(doc: dict) -> dict[str, tuple[str, float | None]]:
    """layer -> (expression, DyT alpha or None), from an exprc.layers/1 document or a bare {name: expr} map."""
    layers = doc.get("layers", doc) if isinstance(doc, dict) else None
    if not isinstance(layers, dict):
        raise ExprcError("expected a layers file: {\"layers\": {name: expr or {\"expr\": ...}}}")
    out = {}
    for name, entry in layers.items():
        if isinstance(entry, str):
            out[name] = (entry, None)
        elif isinstance(entry, dict) and isinstance(entry.get("expr"), str):
            out[name] = (entry["expr"], (entry.get("dyt") or {}).get("alpha"))
    return out


def plot_layers(doc: dict, mappings: Mappings, output: str | Path, seed: int = 0) -> list[str]:
    """Draw one panel per layer found in both `doc` and `mappings` into `output`; return the layer names drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = _layer_entries(doc)
    clip = tuple(doc.get("clip", (-5.0, 5.0))) if isinstance(doc.get("clip"), list) else (-5.0, 5.0)
    names = [n for n in mappings.names() if n in entries]
    if not names:
        raise ExprcError("no layer of the layers file is in the mappings file")
    cols = min(COLUMNS, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    rng = np.random.default_rng(seed)
    for ax, name in zip(axes.flat, names, strict=False):  # more panels than layers
        m = mappings.layers[name]
        pick = rng.choice(len(m.x), size=min(SCATTER_POINTS, len(m.x)), replace=False)
        ax.scatter(m.x[pick], m.y[pick], s=1, alpha=0.3, color="tab:blue", rasterized=True, label="LayerNorm")
        grid = np.linspace(float(m.x.min()), float(m.x.max()), 400)
        expr, alpha = entries[name]
        try:
            ax.plot(grid, evaluate(parse(expr, clip), grid), color="tab:orange", lw=1.8, label="GP")
        except ExprcError as e:
            raise e.with_where(name) from None
        if alpha is not None:
            ax.plot(grid, np.tanh(alpha * grid), "--", color="tab:red", lw=1.2, label=f"DyT (a={alpha:.2f})")
        ax.set_title(name, fontsize=9)
        ax.text(0.02, 0.98, "\n".join(textwrap.wrap(expr, 38)[:4]), transform=ax.transAxes, fontsize=6,
                va="top", family="monospace", bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="lower right", markerscale=5)
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return names
