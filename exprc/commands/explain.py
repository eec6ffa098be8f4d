"""`exprc explain`: the IR after every pass, the rules that fired, and the generated kernel code."""

from __future__ import annotations

import argparse

from ._common import add_layers_arguments, add_mode_argument, out, pick_layers, read_layer_file

HELP = "show the IR after every pass, node counts, times and the generated Triton code"
DESCRIPTION = """For each layer (or the ones named with --layer), print the expression, the IR after every pass
of the pipeline with its node count and time, the rules that fired (--trace), each node's value range (--ranges),
the fusion plan (matmul epilogue, prologue of the consuming Linear, or standalone, and why) and the generated
Triton function.

examples:
  exprc explain examples/vit_b16_paper.json --layer blocks.8.norm1 --mode horner
  exprc explain examples/vit_b16_paper.json --layer norm --print-after simplify --trace"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_layers_arguments(p)
    add_mode_argument(p)
    p.add_argument("--layer", action="append", metavar="NAME", help="only this layer (repeatable)")
    p.add_argument("--print-after", action="append", metavar="PASS",
                   help="print the IR only after this pass (repeatable); default: after every pass")
    p.add_argument("--trace", action="store_true", help="list the rewrite rules that fired in each pass")
    p.add_argument("--ranges", action="store_true", help="annotate the final IR with each node's value range")
    p.add_argument("--no-code", action="store_true", help="do not print the generated code")
    p.add_argument("--d", type=int, default=768, help="model width for the fusion plan (default 768, ViT-B)")


def _ir_with_ranges(root) -> str:
    from ..ir import print_ir
    from ..passes.ranges import format_interval

    lines = print_ir(root).split("\n")
    nodes = root.toposort()
    annotated = [f"{line:<48} ; {format_interval(n)}" for line, n in zip(lines, nodes, strict=False)]
    return "\n".join(annotated + lines[len(nodes):])


def run(args: argparse.Namespace) -> int:
    from ..cost import dag_flops, flops_optimized, flops_paper
    from ..errors import ExprcError
    from ..ir import print_ir
    from ..passes.pipeline import optimize

    ls = read_layer_file(args)
    names = {s.name for s in optimize(next(iter(ls)).ir, args.mode).stages} if len(ls) else set()
    for want in args.print_after or ():
        if want not in names:
            raise ExprcError(f"--print-after {want!r}: no such pass; passes are {', '.join(sorted(names))}")
    from ..codegen.planner import plan_vit

    chosen = pick_layers(ls, args.layer)
    plans = plan_vit({layer.name: layer.ir for layer in chosen}, dim=args.d)
    for layer in chosen:
        res = optimize(layer.ir, args.mode, trace=args.trace)
        out(f"=== layer {layer.name}: {layer.expr}")
        out(f"    FLOPs per element: {flops_paper(layer.ir)} as written, {flops_optimized(layer.ir)} optimized "
            f"(paper conventions); lowered IR: {res.stages[-1].nodes} nodes, {dag_flops(res.root)} ops")
        for st in res.stages:
            if args.print_after and st.name not in args.print_after:
                continue
            out(f"--- after {st.name}: {st.nodes} nodes, {st.seconds * 1e3:.2f} ms")
            if args.trace and st.fired:
                for f in st.fired:
                    out(f"    fired: {f}")
            out(_ir_with_ranges(st.root) if args.ranges and st is res.stages[-1] else print_ir(st.root))
        plan = plans[layer.name]
        out(f"--- fusion plan (timm ViT context, d={args.d}): {plan.kind}: {plan.reason}")
        if not args.no_code:
            from ..codegen.emit_triton import emit_expr_function

            out(f"--- generated Triton function ({args.mode} mode)")
            out(emit_expr_function(res.root, "expr_fn"))
        out()
    return 0
