"""`exprc cost`: the paper's FLOP and memory cost model, per layer and in total."""

from __future__ import annotations

import argparse
import json

from ._common import add_layers_arguments, out, read_layer_file

HELP = "FLOPs per feature element and read bytes per token, as the paper's Table 4 and Appendix F"
DESCRIPTION = """Print, per layer, the expression's FLOPs per feature element as written (paper conventions: each
+ - * / is 1, x**n is n-1, tanh 23, sigmoid 22, exp 19, clip and neg 0) and after exprc's optimizations (CSE,
folding, clip/tanh fusion, tanh and sigmoid on one shared exp), with totals, LayerNorm (5d+2 per token) and DyT
(24d) beside them, and read bytes per token (f32: LayerNorm 8d, element-wise 4d).

examples:
  exprc cost examples/vit_b16_paper.json
  exprc cost examples/vit_b16_paper.json --d 4096 --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_layers_arguments(p)
    p.add_argument("--d", type=int, default=768, help="feature dimension for per-token figures (default 768)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from ..compiler import compile_layers
    from ..cost import dyt_flops, layernorm_flops, read_bytes_per_token
    from ..errors import ExprcError

    if args.d <= 0:
        raise ExprcError(f"--d must be a positive integer, got {args.d}")
    ls = read_layer_file(args)
    d, n = args.d, len(ls)
    rows = [{"name": la.name, "expr": la.expr, "flops_paper": la.compiled.cost["flops_paper"],
             "flops_optimized": la.compiled.cost["flops_optimized"]} for la in compile_layers(ls).layers]
    tp, to = sum(r["flops_paper"] for r in rows), sum(r["flops_optimized"] for r in rows)
    result = {
        "source": ls.source, "d": d, "layers": rows,
        "total_flops_paper": tp, "total_flops_optimized": to,
        "per_token": {"gp_paper": tp * d, "gp_optimized": to * d, "layernorm": n * layernorm_flops(d),
                      "dyt": n * dyt_flops(d)},
        "read_bytes_per_token": {"layernorm": n * read_bytes_per_token(d, "layernorm"),
                                 "elementwise": n * read_bytes_per_token(d)},
    }
    if args.json:
        out(json.dumps(result, indent=1))
        return 0
    width = min(max((len(r["expr"]) for r in rows), default=10), 70)
    out(f"{'#':>3}  {'layer':<16} {'expr':<{width}} {'paper':>6} {'opt':>6}   (FLOPs per feature element)")
    for i, r in enumerate(rows, 1):
        e = r["expr"] if len(r["expr"]) <= width else r["expr"][: width - 3] + "..."
        out(f"{i:>3}  {r['name']:<16.16} {e:<{width}} {r['flops_paper']:>5}d {r['flops_optimized']:>5}d")
    out(f"     {'total (' + str(n) + ' layers)':<{16 + width + 1}} {tp:>5}d {to:>5}d")
    out()
    out(f"per token at d={d}, all {n} layers:")
    out(f"  GP as written   {tp * d:>12,} FLOPs   ({tp}d)")
    out(f"  GP optimized    {to * d:>12,} FLOPs   ({to}d)")
    out(f"  LayerNorm       {n * layernorm_flops(d):>12,} FLOPs   ({n}x(5d+2))")
    out(f"  DyT             {n * dyt_flops(d):>12,} FLOPs   ({n}x24d)")
    out(f"  read bytes (f32): LayerNorm {n * read_bytes_per_token(d, 'layernorm'):,}, "
        f"element-wise (GP, DyT) {n * read_bytes_per_token(d):,}")
    return 0
