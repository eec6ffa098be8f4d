"""The README's benchmark tables, regenerated from the newest GPU results between two markers.

Only full (not --quick) GPU runs count. Several runs of the same GPU merge (a later run's row replaces an earlier
one with the same bench, impl, layer, shape and dtype), so benches can be run one command at a time. Each bench
is one pivot table: implementations down, shapes across, one number per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExprcError
from .cases import MEAN_LAYER
from .results import read_document, schema_problems

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class TableSpec:
    title: str
    explain: str
    cell: str  # "gbps" | "ms_ratio" | "images_per_s"
    baseline: str | None = None


TABLES = {
    "kernels": TableSpec("Element-wise kernels: effective bandwidth, GB/s (higher is better)",
                         "x read once + y written once, per time (in brackets: % of `copy`, the ceiling). "
                         "Per-layer implementations show the mean time over their layers.", "gbps"),
    "epilogue": TableSpec("Linear + bias + residual + norm: ms (time / `linear` alone)",
                          "`linear` is cuBLAS matmul + bias: the floor. Per-layer implementations show the mean "
                          "over their layers.", "ms_ratio", "linear"),
    "vit": TableSpec("ViT-B/16 inference: images/s (higher is better)",
                     "Random-init weights, timed from a CUDA graph where the model can be captured.", "images_per_s"),
    "train": TableSpec("Training (forward + backward): ms (time / `torch-layernorm` for the norm rows)",
                       "Norm rows: one norm, tokens x 768; `fc2` rows: the fused block tail; `step` rows: a ViT "
                       "training step (AMP bf16). Per-layer implementations show the mean over their layers.",
                       "ms_ratio", "torch-layernorm"),
}


def gpu_documents(results_dir: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """Well-formed full GPU results in `results_dir`, oldest first."""
    docs = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            doc = read_document(path)
        except (OSError, ValueError):
            continue
        if schema_problems(doc) or not doc.get("gpu") or doc.get("quick"):
            continue
        docs.append((path, doc))
    return sorted(docs, key=lambda pd: pd[1]["date"])


def merged_rows(docs: list[tuple[Path, dict[str, Any]]]) -> tuple[list[dict], list[tuple[Path, dict]]]:
    """The rows of the newest GPU's runs, newest row per key; and the documents they came from."""
    if not docs:
        return [], []
    device = docs[-1][1]["device"]
    used = [(p, d) for p, d in docs if d["device"] == device]
    rows: dict[tuple, dict] = {}
    for _, doc in used:
        for row in doc["rows"]:
            key = (row["bench"], row["impl"], row.get("layer"), row["shape"], row["dtype"])
            if row.get("ms") is not None or key not in rows:
                rows[key] = row
    return list(rows.values()), used


def _short_dtype(dtype: str) -> str:
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(dtype, dtype)


def _number(v: float) -> str:
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}"


def _cell(row: dict | None, spec: TableSpec) -> str:
    if row is None:
        return ""
    if row.get("ms") is None:
        return "error" if row.get("error") else "skip"
    if spec.cell == "gbps":
        of_copy = row.get("ratio_to", {}).get("copy")
        return _number(row["gbps"]) + (f" ({100 / of_copy:.0f}%)" if of_copy else "")
    if spec.cell == "images_per_s":
        return _number(row["images_per_s"])
    ratio = row.get("ratio_to", {}).get(spec.baseline)
    return f"{row['ms']:.3f} ({ratio:.2f}x)" if ratio is not None else f"{row['ms']:.3f}"


BIG_TENSOR = 64 * 2**20  # bytes: where the element-wise bandwidth target applies
_ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2}


def _worst(rows: list[dict], bench: str, prefix: str, baseline: str, keep) -> dict[str, tuple[float, dict]]:
    """Per implementation starting with `prefix`: its largest ratio to `baseline` over the rows `keep` admits."""
    worst: dict[str, tuple[float, dict]] = {}
    for r in rows:
        ratio = r.get("ratio_to", {}).get(baseline)
        if r["bench"] != bench or not r["impl"].startswith(prefix) or r.get("layer") != MEAN_LAYER or not ratio:
            continue
        if keep(r) and ratio > worst.get(r["impl"], (0.0, r))[0]:
            worst[r["impl"]] = (ratio, r)
    return worst


def targets(rows: list[dict]) -> list[str]:
    """DESIGN.md's performance targets, each with the worst measured case of each exprc implementation."""
    lines = []

    def big(r: dict) -> bool:
        return r["dims"].get("tokens", 0) * r["dims"].get("d", 0) * _ITEMSIZE.get(r["dtype"], 4) >= BIG_TENSOR

    for impl, (ratio, r) in _worst(rows, "kernels", "exprc-", "copy", big).items():
        pct = 100 / ratio
        verdict = "met" if pct >= 95 else "NOT met"
        lines.append(f"- element-wise >= 95% of copy bandwidth on >= 64 MB: `{impl}` worst {pct:.0f}% "
                     f"({r['shape']} {_short_dtype(r['dtype'])}, mean over layers): {verdict}")
    for impl, (ratio, r) in _worst(rows, "epilogue", "exprc-fused-", "linear", lambda r: True).items():
        lines.append(f"- fused epilogue <= 1.03x cuBLAS matmul + bias: `{impl}` worst {ratio:.2f}x "
                     f"({r['shape']} {_short_dtype(r['dtype'])}): {'met' if ratio <= 1.03 else 'NOT met'}")
    return lines


def pivot(rows: list[dict], bench: str) -> tuple[list[str], list[str], dict[tuple[str, str], dict]]:
    """(implementation labels, column labels, {(impl, column): row}) of one bench's summary rows."""
    impls: list[str] = []
    cols: list[str] = []
    cells: dict[tuple[str, str], dict] = {}
    for row in rows:
        if row["bench"] != bench or row.get("layer") not in (None, MEAN_LAYER) or row["impl"] == "*":
            continue
        impl = row["impl"] + (" (layer mean)" if row.get("layer") == MEAN_LAYER else "")
        col = f"{row['shape']} {_short_dtype(row['dtype'])}"
        for seq, item in ((impls, impl), (cols, col)):
            if item not in seq:
                seq.append(item)
        cells[(impl, col)] = row
    return impls, cols, cells


def markdown_table(rows: list[dict], bench: str) -> str:
    spec = TABLES[bench]
    impls, cols, cells = pivot(rows, bench)
    if not impls:
        return ""
    lines = [f"**{spec.title}.** {spec.explain}", "", "| implementation | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for impl in impls:
        lines.append(f"| {impl} | " + " | ".join(_cell(cells.get((impl, c)), spec) for c in cols) + " |")
    return "\n".join(lines)


def markdown(results_dir: str | Path) -> str:
    """The text that goes between the README markers."""
    rows, used = merged_rows(gpu_documents(results_dir))
    if not rows:
        return ("No GPU results yet: run `exprc bench all` on a CUDA machine, then `exprc bench report`.")
    doc = used[-1][1]
    files = ", ".join(f"`{p.name}`" for p, _ in used)
    head = (f"Measured on **{doc['device']}** (torch {doc['torch']}, Triton {doc['triton']}, {doc['date'][:10]}) "
            f"by `exprc bench`; medians of `triton.testing.do_bench`. From {files}.")
    goals = targets(rows)
    parts = [head] + (["Targets (DESIGN.md):\n" + "\n".join(goals)] if goals else [])
    parts += [t for t in (markdown_table(rows, b) for b in TABLES) if t]
    return "\n\n".join(parts)


def update_readme(readme: str | Path, results_dir: str | Path) -> bool:
    """Replace the text between the bench markers in `readme`; True when the file changed."""
    path = Path(readme)
    try:
        text = path.read_text()
    except OSError as e:
        raise ExprcError(f"cannot read {path}: {e.strerror}") from None
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ExprcError(f"{path} has no '{BEGIN}' ... '{END}' markers for the benchmark table")
    new = text[: start + len(BEGIN)] + "\n" + markdown(results_dir) + "\n" + text[end:]
    if new == text:
        return False
    path.write_text(new)
    return True
