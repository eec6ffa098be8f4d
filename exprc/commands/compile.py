"""`exprc compile`: layer file -> directory of generated expression modules + manifest.json."""

from __future__ import annotations

import argparse

from ._common import add_context_arguments, add_layers_arguments, add_mode_argument, context_from, out, read_layer_file

HELP = "compile every layer's expression and write the generated modules and a manifest with the fusion plan"
DESCRIPTION = """Parse and optimize every expression of LAYERS and write into DIR one generated Python file per
distinct expression (its header, the expression as a Triton jit function and as eager torch code; the kernels
that run it are part of exprc) and manifest.json (format version, options, source hash, and for each layer its
expression, file, cost and placement: the epilogue of the matmul that produces its input, the prologue of the
Linear that consumes it, or standalone, with the reason). The plan assumes a timm ViT of width --d. The
directory is written next to DIR and renamed into place at the end: a failed or interrupted compile leaves the
previous DIR whole. Load the result with exprc.load(DIR) or exprc.patch_timm(model, DIR).

examples:
  exprc compile examples/vit_b16_paper.json -o kernels/
  exprc compile layers.json -o kernels_fast/ --mode fast"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_layers_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory (replaced atomically)")
    add_mode_argument(p)
    add_context_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    import time
    from collections import Counter

    from ..compiler import compile_layers, write_package

    t = time.perf_counter()
    artifact = compile_layers(read_layer_file(args), args.mode, context_from(args))
    path = write_package(artifact, args.output)
    if not args.quiet:
        kinds = Counter(la.plan.kind for la in artifact.layers)
        plan = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        out(f"wrote {path}: {len(artifact.layers)} layers, {len(artifact.kernels)} expression modules, "
            f"{args.mode} mode; plan: {plan} ({time.perf_counter() - t:.2f} s)")
    return 0
