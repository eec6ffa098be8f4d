"""Where a clip-only layer's instructions go, beside a plain copy: SASS opcodes per bf16 element on sm_90.

    python bench/clip_breakdown.py [--arch 90] [-o bench/results/clip-breakdown-sm90.json]

Compiles (no GPU) Triton's plain copy and exprc's element-wise kernel for f = identity and for the paper's
clip-only layers, with the same elements a thread (exprc's tile at ViT's width), and prints each opcode's count
per element. The difference between the identity kernel and the copy is mostly the layer's affine `f(x) * w + b` in f32
(widening x, w and b, one FFMA, packing y); the difference between a clip layer and the identity kernel is f.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exprc.benchmarks.static import ELEMENT_SIZE  # noqa: E402
from exprc.benchmarks.static_baselines import VIT_D, compile_copy  # noqa: E402
from exprc.codegen.compile_check import compile_elementwise  # noqa: E402
from exprc.codegen.sass import parse_sass  # noqa: E402
from exprc.compiler import compile_expr, expression_module  # noqa: E402
from exprc.frontend.layer_files import read_layers  # noqa: E402
from exprc.ir import Op  # noqa: E402
from exprc.runtime.kernels import family  # noqa: E402


def per_element(kernel) -> tuple[dict[str, float], float]:
    """Opcode (with modifiers) -> count per element, and the total, over the kernel's main path (no NOPs)."""
    p = kernel.profile()
    code = [i for i in parse_sass(kernel.sass()) if i.name != "NOP"][: p.main]
    scale = kernel.num_warps * 32 / kernel.elements
    counts = Counter(i.opcode for i in code)
    return {op: round(n * scale, 3) for op, n in sorted(counts.items())}, round(p.main * scale, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, default=90)
    ap.add_argument("--storage", default="bfloat16", choices=sorted(ELEMENT_SIZE))
    ap.add_argument("-o", "--out", help="also write the table as JSON here")
    args = ap.parse_args(argv)
    import triton

    block_m, block_d, warps = family("elementwise", interpreted=False).launch_config(
        1 << 16, VIT_D, ELEMENT_SIZE[args.storage])
    kernels = {"copy": compile_copy(arch=args.arch, storage=args.storage, block=block_m * block_d, num_warps=warps)}
    layers = read_layers(ROOT / "examples" / "vit_b16_paper.json")
    piecewise_linear = {Op.INPUT, Op.CONST, Op.MUL, Op.ADD, Op.SUB, Op.NEG, Op.CLIP}
    ops_of = {la.name: {n.op for n in la.ir.toposort()} for la in layers}
    exprs = {"identity": "x", "0.698*clip(2.31*x)": "0.698*clip(2.31*x)"}
    exprs |= {f"{la.name}: {la.expr}": la.expr for la in layers
              if Op.CLIP in ops_of[la.name] and ops_of[la.name] <= piecewise_linear}
    for name, text in exprs.items():
        module = expression_module(compile_expr(text, "auto", clip=tuple(layers.clip)), interpreted=False)
        kernels[name] = compile_elementwise(module, arch=args.arch, storage=args.storage)
    table = {name: per_element(k) for name, k in kernels.items()}
    ops = sorted({op for counts, _ in table.values() for op in counts})
    names = list(table)
    print(f"SASS instructions per {args.storage} element, sm_{args.arch}, Triton {triton.__version__}, "
          f"{block_m}x{block_d} tile, {warps} warps")
    print("| opcode | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for op in ops:
        print(f"| {op} | " + " | ".join(f"{table[n][0].get(op, 0):g}" for n in names) + " |")
    print("| **total** | " + " | ".join(f"**{table[n][1]:g}**" for n in names) + " |")
    print("| / copy | " + " | ".join(f"{table[n][1] / table['copy'][1]:.2f}" for n in names) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "arch": args.arch, "storage": args.storage, "triton": triton.__version__, "tile": [block_m, block_d],
            "num_warps": warps, "per_element": {n: {"total": t, "opcodes": c} for n, (c, t) in table.items()}},
            indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
