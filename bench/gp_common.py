"""What the GP benchmarks share: the machine's description and load, and the tiny digits model's mappings.

The mappings are extracted from the committed weights (examples/tiny_digits/model.safetensors) over the 359
validation digits written as an ImageFolder, at any number of points per layer (the paper: 50,000), into
$EXPRC_CACHE_DIR/bench (else ~/.cache/exprc/bench), named by the weights' hash, with `exprc extract` itself.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tiny_digits"
CACHE = Path(os.environ.get("EXPRC_CACHE_DIR") or Path.home() / ".cache" / "exprc") / "bench"
RESULTS = ROOT / "bench" / "results"


def load() -> dict:
    """The 1, 5 and 15 minute load averages (other processes' work shows here)."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)], "cpus": os.cpu_count()}


def machine() -> dict:
    import jax

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0") if Path("/proc/meminfo").exists() else "0"
    versions = {}
    for name in ("jax", "jaxlib", "kozax", "numpy"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # a missing package is simply not listed
            pass
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(int(mem) / 2**20, 1),
            "platform": platform.platform(), "python": sys.version.split()[0], "jax_backend": jax.default_backend(),
            "versions": versions}


def tiny_digits_mappings(points: int) -> Path:
    """The tiny model's mappings at `points` per layer (made once per weights file, then reused from the cache)."""
    import hashlib

    weights = hashlib.sha256((EXAMPLE / "model.safetensors").read_bytes()).hexdigest()[:12]
    out = CACHE / f"tiny_digits_{weights}_{points}.npz"  # new weights, new file: never an older model's points
    if out.exists():
        return out
    from exprc.data.digits import write_image_folder

    images = CACHE / "digits_val"
    if not images.exists():
        write_image_folder(images, "val")
    info = json.loads((EXAMPLE / "model.json").read_text())
    model_args = [a for k, v in info["model_kwargs"].items() for a in ("--model-arg", f"{k}={json.dumps(v)}")]
    cmd = [sys.executable, "-m", "exprc", "extract", "--model", info["model"], "--checkpoint",
           str(EXAMPLE / "model.safetensors"), *model_args,
           "--images", str(images), "--max-images", str(info["val_images"]), "--points", str(points),
           "--device", "cpu", "-o", str(out)]
    subprocess.run(cmd, check=True)
    return out


def write_result(name: str, doc: dict) -> Path:
    from exprc.gp.layer_results import write_json_atomic

    path = RESULTS / name
    write_json_atomic(path, doc)
    return path
