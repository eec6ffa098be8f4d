"""exprc plot: the mappings with the GP and DyT curves, one panel per layer (the paper's Figure 6)."""

from __future__ import annotations

import argparse

HELP = "plot each layer's mapping with its GP expression and DyT curve (paper Figure 6)"
DESCRIPTION = """\
A grid of panels, one per layer present in both files: a scatter of the layer's (x, y_pre) points, the GP
expression from the layers file (orange) and, when the file has one (as `exprc evolve` writes it), the DyT
baseline tanh(alpha x) (dashed red). Needs matplotlib.

example:
  exprc plot layers.json mappings.npz -o fig6.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("layers", help="layers.json (exprc.layers/1, or a bare {name: expr} map)")
    p.add_argument("mappings", help="the .npz written by `exprc extract`")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="image to write (.png, .pdf, .svg)")


def run(args: argparse.Namespace) -> int:
    from ..gp.deps import require

    require("plot", ("matplotlib",), "bench")

    import json

    from ..errors import ExprcError
    from ..gp.mappings import load_mappings
    from ..gp.plot import plot_layers

    try:
        with open(args.layers) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ExprcError(f"cannot read layers file: {e}", where=args.layers) from None
    names = plot_layers(doc, load_mappings(args.mappings), args.output)
    print(f"wrote {args.output}: {len(names)} layers")
    return 0
