"""One PNG per bench: the numbers of the summary table as grouped bars (needs matplotlib; skipped without)."""

from __future__ import annotations

from pathlib import Path

from .report import TABLES, pivot

VALUE = {"gbps": ("gbps", "GB/s"), "ms_ratio": ("ms", "ms (lower is better)"), "images_per_s":
         ("images_per_s", "images/s")}


def plot_bench(rows: list[dict], bench: str, path: Path, title_suffix: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls, cols, cells = pivot(rows, bench)
    key, label = VALUE[TABLES[bench].cell]
    impls = [i for i in impls if any((cells.get((i, c)) or {}).get(key) for c in cols)]  # measured somewhere
    if not impls:
        return None
    width = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(cols) + 0.25 * len(impls)), 4.5))
    for i, impl in enumerate(impls):
        heights = [(cells.get((impl, c)) or {}).get(key) or 0.0 for c in cols]
        ax.bar([j + i * width for j in range(len(cols))], heights, width, label=impl)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cols))], cols, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(label)
    ax.set_title(f"{bench}: {title_suffix}", fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_document(doc: dict, json_path: Path) -> list[str]:
    """Write `<json stem>_<bench>.png` next to the results file; returns messages to print."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ["plots: matplotlib is not installed (pip install 'exprc[bench]'): no PNGs written"]
    suffix = doc["device"] + (" - NOT GPU numbers" if not doc.get("gpu") else "")
    messages = []
    for bench in doc.get("benches", []):
        out = json_path.with_name(f"{json_path.stem}_{bench}.png")
        written = plot_bench(doc["rows"], bench, out, suffix)
        messages.append(f"plot: {written}" if written else f"plots: nothing measured for {bench}")
    return messages
