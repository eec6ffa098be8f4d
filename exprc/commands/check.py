"""`exprc check`: read and validate a layer file; nothing is written."""

from __future__ import annotations

import argparse

from ._common import add_layers_arguments, add_mode_argument, out, read_layer_file

HELP = "validate a layer file (parse, verify and optimize every expression); writes nothing"
DESCRIPTION = """Read LAYERS, parse every expression, run the optimization pipeline in the chosen mode and verify
the IR after every pass. Exit status 0 when everything is valid, 2 with a one-line error (file, layer, column)
otherwise.

example:
  exprc check examples/vit_b16_paper.json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_layers_arguments(p)
    add_mode_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    from ..compiler import compile_layers

    ls = read_layer_file(args)
    artifact = compile_layers(ls, args.mode)
    if not args.quiet:
        model = f" for {ls.model}" if ls.model else ""
        out(f"ok: {len(ls)} layers{model}, {len(artifact.kernels)} distinct kernels ({args.mode} mode), "
            f"clip {list(ls.clip)}")
    return 0
