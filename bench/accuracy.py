"""Measured error of exprc's element-wise kernels per mode, against a float64 numpy evaluation of the original
expression: the Triton kernel under TRITON_INTERPRET=1 (CPU) or on CUDA when available.

    python bench/accuracy.py [LAYERS] [--n 100000]

Error is |y - ref| / (1 + |ref|) with ref computed from the f32-rounded input (the issue's measure); inputs are
random normal x 3 and x 30 plus the edge values 0, +-1e-30, +-1e30, +-3e38, +-inf, NaN. On the CPU, `fast` mode
runs its interpreter fallback (library tanh), so its hardware error (tanh.approx.f32) is only measured on a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TRITON_INTERPRET", "0" if "--cuda" in sys.argv else "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import exprc  # noqa: E402
from exprc.compiler import write_package  # noqa: E402
from exprc.ir import evaluate  # noqa: E402

EDGE = [0.0, 1e-30, -1e-30, 1e30, -1e30, 3e38, -3e38, np.inf, -np.inf, np.nan]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("layers", nargs="?", default="examples/vit_b16_paper.json")
    ap.add_argument("--n", type=int, default=20000, help="random inputs per layer")
    ap.add_argument("--cuda", action="store_true", help="run on the GPU instead of the interpreter")
    args = ap.parse_args()
    device = "cuda" if args.cuda else "cpu"
    rng = np.random.default_rng(0)
    x64 = np.concatenate([rng.normal(0, 3, args.n // 2), rng.normal(0, 30, args.n // 2), EDGE])
    x64 = x64.astype(np.float32).astype(np.float64)
    ls = exprc.read_layers(args.layers)
    print(f"{'mode':<8} {'max err':>10}  {'worst layer':<18} NaN from finite  NaN in->out  ({device})")
    for mode in ("precise", "fast", "horner"):
        with tempfile.TemporaryDirectory() as d:
            norms = exprc.load(write_package(ls, os.path.join(d, "k"), mode=mode), backend="triton",
                               normalized_shape=len(x64), device=device)
            worst, worst_layer, nan_bad, nan_ok = 0.0, "-", 0, True
            for layer in ls:
                norm = norms[layer.name]
                x = torch.tensor(x64, dtype=torch.float32, device=device)
                with torch.no_grad():
                    y = norm(x).double().cpu().numpy()
                with np.errstate(all="ignore"):
                    ref = evaluate(layer.ir, x64).astype(np.float32).astype(np.float64)
                    err = np.abs(y - ref) / (1 + np.abs(ref))
                same = (y == ref) | (np.isnan(y) & np.isnan(ref))
                e = float(np.max(np.where(same, 0.0, np.nan_to_num(err, nan=np.inf))))
                if e > worst:
                    worst, worst_layer = e, layer.name
                nan_bad += int(np.isnan(y[np.isfinite(x64)]).sum())
                nan_ok &= bool(np.isnan(y[np.isnan(x64)]).all())
            print(f"{mode:<8} {worst:>10.3g}  {worst_layer:<18} {nan_bad:>15}  {str(nan_ok):>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
