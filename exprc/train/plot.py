"""The paper's Figure 3: validation top-1 per epoch of re-alignment runs, full range (left) and zoomed (right).

Runs are drawn by their label (GP-D, DyT-A, LN, ...); several runs with one label (seeds, or the five GP layer
sets) become their mean with a band of one standard deviation. Epoch 0 is the model right after the
replacement, the "shock"; the dashed black line is the original LayerNorm model before any fine-tuning.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import ExprcError

COLORS = {"LN": "tab:blue", "GP-A": "tab:olive", "GP-F": "tab:orange", "GP-D": "tab:red", "DyT-A": "tab:green",
          "DyT-F": "tab:purple", "DyT-D": "tab:brown"}


def curves(logs: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """label -> (epochs, mean top-1, std top-1) over the runs with that label, on the epochs all of them have."""
    by_label: dict[str, list[dict[int, float]]] = defaultdict(list)
    for doc in logs:
        by_label[doc.get("label") or "run"].append({int(r["epoch"]): float(r["top1"]) for r in doc["epochs"]})
    out = {}
    for label, runs in by_label.items():
        epochs = sorted(set.intersection(*(set(r) for r in runs)))
        if not epochs:
            raise ExprcError(f"the runs labelled {label} share no evaluated epoch")
        values = np.array([[r[e] for e in epochs] for r in runs])
        out[label] = (np.array(epochs), values.mean(axis=0), values.std(axis=0))
    return out


def original_top1(logs: list[dict]) -> float | None:
    values = [doc["original"]["top1"] for doc in logs if isinstance(doc.get("original"), dict)]
    return float(np.mean(values)) if values else None


def plot_accuracy(logs: list[dict], output: str | Path) -> list[str]:
    """Draw the curves of `logs` (realign log.json documents) into `output`; returns the labels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = curves(logs)
    reference = original_top1(logs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, zoom in zip(axes, (False, True), strict=True):
        for label, (epochs, mean, std) in data.items():
            color = COLORS.get(label)
            shown = epochs > 0 if zoom else np.ones_like(epochs, dtype=bool)
            ax.plot(epochs[shown], mean[shown], marker="o", ms=3, lw=1.5, color=color, label=label)
            if np.any(std > 0):
                ax.fill_between(epochs[shown], (mean - std)[shown], (mean + std)[shown], color=color, alpha=0.2)
        if reference is not None:
            ax.axhline(reference, ls="--", color="black", lw=1, label=f"original ({reference:.2f}%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation top-1 (%)")
        ax.grid(alpha=0.3)
        ax.set_title("after epoch 1 (zoomed)" if zoom else "re-alignment, epoch 0 = after the replacement",
                     fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return list(data)
