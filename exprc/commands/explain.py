"""`exprc explain`: the IR after every pass, the rules that fired, and the generated kernel code."""

from __future__ import annotations

import argparse

from ._common import (add_context_arguments, add_layers_arguments, add_mode_argument, context_from, out, pick_layers,
                      read_layer_file)

HELP = "show the IR after every pass, node counts, times and the generated Triton code"
DESCRIPTION = """For each layer (or the ones named with --layer), print the expression, the IR after every pass
of the pipeline with its node count and time, the rules that fired (--trace), each node's value range (--ranges),
the derivative f' the backward kernels compute (lowered the same way), the fusion plan (matmul epilogue, prologue
of the consuming Linear, or standalone, and why: what `exprc compile` writes into manifest.json) and the
generated Triton function. The FLOPs shown are those of the code of the mode
shown (`exprc cost` gives the paper's optimized count).

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
    add_context_arguments(p)


def _ir_with_ranges(root) -> str:
    from ..ir import print_ir
    from ..passes.ranges import format_interval

    lines = print_ir(root).split("\n")
    nodes = root.toposort()
    annotated = [f"{line:<48} ; {format_interval(n)}" for line, n in zip(lines, nodes, strict=False)]
    return "\n".join(annotated + lines[len(nodes):])


def run(args: argparse.Namespace) -> int:
    from ..compiler import compile_expr, compile_layers
    from ..errors import ExprcError
    from ..ir import print_ir

    ls = read_layer_file(args)
    artifact = compile_layers(ls, args.mode, context_from(args))
    chosen = pick_layers(ls, args.layer)
    names = {s.name for s in artifact.layers[0].compiled.result.stages} if artifact.layers else set()
    for want in args.print_after or ():
        if want not in names:
            raise ExprcError(f"--print-after {want!r}: no such pass; passes are {', '.join(sorted(names))}")
    if args.mode == "auto":
        from ..passes.auto_lowering import describe_errors

        out("=== the stated error bound of each lowering (auto proves each expression against them):")
        out(describe_errors())
    for layer in chosen:
        planned = artifact.layer(layer.name)
        compiled = compile_expr(layer.ir, args.mode, trace=args.trace) if args.trace else planned.compiled
        res, cost = compiled.result, compiled.cost
        out(f"=== layer {layer.name}: {layer.expr}")
        out(f"    FLOPs per element (paper conventions): {cost['flops_paper']} as written, {cost['flops_code']} in "
            f"the {args.mode} code below ({res.stages[-1].nodes} IR nodes)")
        for st in res.stages:
            if args.print_after and st.name not in args.print_after:
                continue
            out(f"--- after {st.name}: {st.nodes} nodes, {st.seconds * 1e3:.2f} ms")
            if args.trace:
                for f in st.fired or ():
                    out(f"    fired: {f}")
                if st.fired is not None and not st.fired:
                    out("    (no rule fired)")
            out(_ir_with_ranges(st.root) if args.ranges and st is res.stages[-1] else print_ir(st.root))
        grad = compiled.grad
        out(f"--- derivative f' (for the backward kernels): {cost['flops_grad']} FLOPs in the {args.mode} code, "
            f"{grad.stages[-1].nodes} IR nodes")
        out(print_ir(grad.root))
        if compiled.auto is not None:
            out("--- auto: lowering per storage dtype (error budget a*(1 + |f|); bounds: exprc.passes.error_bounds)")
            for storage, choice in compiled.auto.choices.items():
                out(f"    {storage}: {choice.mode}: {choice.reason}")
        plan, ctx = planned.plan, artifact.context
        out(f"--- fusion plan (timm ViT, d={ctx.dim}, mlp {ctx.as_dict()['mlp_hidden']}): {plan.kind}: {plan.reason}")
        if not args.no_code:
            out(f"--- generated Triton function ({args.mode} mode)")
            out(compiled.triton_function())
        out()
    return 0
