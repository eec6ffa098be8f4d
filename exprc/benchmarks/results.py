"""Results files: one JSON document per run under `bench/results/`, named by date and device.

    {"format": "exprc.bench/1", "device": "NVIDIA H100 80GB HBM3" | "cpu", "gpu": bool, "torch", "triton",
     "date", "quick": bool, "note", ..., "rows": [{"bench", "impl", "shape", "dtype", "layer", "ms",
     "gbps" | "tflops" | "images_per_s", "ratio_to": {baseline impl: ms / baseline ms}, ...}]}

A skipped row (an optional dependency or CUDA missing, or left out by the options) has `"ms": null` and
`"skipped": reason`; a failed row has `"ms": null` and `"error": "Type: message (at file:line)"`.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .cases import Row

FORMAT = "exprc.bench/1"
CPU_NOTE = "CPU smoke run: these are NOT GPU numbers (tiny shapes; they only show that the harness works)"
DEFINITIONS = {
    "ms": "median time of one call in milliseconds",
    "ratio_to": "this row's ms / the named baseline's ms on the same shape and dtype (lower is better)",
    "gbps": "useful memory traffic (input read once + output written once) / time, in GB/s",
    "tflops": "2*M*N*K / time, in TFLOP/s",
    "images_per_s": "batch / time",
    "layer": "per-layer rows name the layer; 'mean' rows average an implementation over its layers",
}
REQUIRED_ROW_KEYS = ("bench", "impl", "shape", "dtype", "ms", "ratio_to")


def _version(module: str) -> str | None:
    """The version of an optional package (Triton is Linux-only), None without it."""
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def environment(device: str) -> dict[str, Any]:
    import torch

    from .. import __version__

    gpu = device == "cuda"
    return {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "gpu": gpu,
        "host_cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "cuda": torch.version.cuda if gpu else None,
        "exprc": __version__,
        "python": platform.python_version(),
    }


def make_document(env: dict[str, Any], quick: bool, benches: tuple[str, ...], rows: list[Row],
                  extra: dict[str, Any], when: datetime | None = None) -> dict[str, Any]:
    when = when or datetime.now(timezone.utc)
    doc = {"format": FORMAT, **env, "date": when.isoformat(timespec="seconds"), "quick": quick,
           "note": CPU_NOTE if not env["gpu"] else "", "benches": list(benches), "command": sys.argv[1:],
           **extra, "definitions": DEFINITIONS, "rows": [r.as_json() for r in rows]}
    return doc


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def default_path(results_dir: str | Path, doc: dict[str, Any]) -> Path:
    when = datetime.fromisoformat(doc["date"])
    name = f"{when:%Y-%m-%d_%H%M%S}_{slug(doc['device'])}{'_quick' if doc['quick'] else ''}.json"
    return Path(results_dir) / name


def write_document(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path


def read_document(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def schema_problems(doc: Any) -> list[str]:
    """What is wrong with a results document (empty when it is well formed)."""
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    problems = [f"missing {k!r}" for k in ("format", "device", "torch", "triton", "date", "quick", "rows")
                if k not in doc]
    if doc.get("format") != FORMAT:
        problems.append(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
    for i, row in enumerate(doc.get("rows", [])):
        missing = [k for k in REQUIRED_ROW_KEYS if k not in row]
        if missing:
            problems.append(f"row {i}: missing {missing}")
            continue
        if row["ms"] is None:
            if not row.get("skipped") and not row.get("error"):
                problems.append(f"row {i} ({row['impl']}): no time, no reason and no error")
        elif not (isinstance(row["ms"], (int, float)) and row["ms"] > 0):
            problems.append(f"row {i} ({row['impl']}): ms is {row['ms']!r}")
        elif not any(k in row for k in ("gbps", "tflops", "images_per_s")):
            problems.append(f"row {i} ({row['impl']}): no gbps, tflops or images_per_s")
    return problems
