"""exprc plot: the mappings with the GP and DyT curves, one panel per layer (the paper's Figure 6); with
--realign, the accuracy curves of re-alignment runs (Figure 3)."""

from __future__ import annotations

import argparse

HELP = "plot each layer's mapping with its GP expression and DyT curve (Figure 6), or realign runs (Figure 3)"
DESCRIPTION = """\
A grid of panels, one per layer present in both files: a scatter of the layer's (x, y_pre) points, the GP
expression from the layers file (orange) and, when the file has one (as `exprc evolve` writes it), the DyT
baseline tanh(alpha x) (dashed red). Needs matplotlib.

With --realign: validation top-1 per epoch of `exprc realign` runs (their directories or log.json files), the
whole range and a zoom after epoch 1, as the paper's Figure 3; epoch 0 is the model right after the replacement,
the dashed line the original LayerNorm model. Runs with the same label (GP-D, ...) are drawn as mean +- std.

examples:
  exprc plot layers.json mappings.npz -o fig6.png
  exprc plot --realign runs/ln runs/gp-a runs/gp-f runs/gp-d runs/dyt-a -o fig3.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("layers", nargs="?", help="layers.json (exprc.layers/1, or a bare {name: expr} map)")
    p.add_argument("mappings", nargs="?", help="the .npz written by `exprc extract`")
    p.add_argument("--realign", nargs="+", metavar="RUN",
                   help="instead: realign run directories (or their log.json) to draw as accuracy curves")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="image to write (.png, .pdf, .svg)")


def run(args: argparse.Namespace) -> int:
    from ..gp.deps import require

    require("plot", ("matplotlib",), "bench")

    import json

    from ..errors import ExprcError
    from ..gp.mappings import load_mappings
    from ..gp.plot import plot_layers

    if args.realign:
        if args.layers or args.mappings:
            raise ExprcError("give either LAYERS MAPPINGS or --realign RUN ..., not both")
        return _plot_realign(args)
    if not (args.layers and args.mappings):
        raise ExprcError("give LAYERS and MAPPINGS (a layers file and an .npz), or --realign RUN ...")

    try:
        with open(args.layers) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ExprcError(f"cannot read layers file: {e}", where=args.layers) from None
    names = plot_layers(doc, load_mappings(args.mappings), args.output)
    print(f"wrote {args.output}: {len(names)} layers")
    return 0


def _plot_realign(args: argparse.Namespace) -> int:
    from ..train.metrics import read_log
    from ..train.plot import plot_accuracy

    labels = plot_accuracy([read_log(run) for run in args.realign], args.output)
    print(f"wrote {args.output}: {', '.join(labels)}")
    return 0
