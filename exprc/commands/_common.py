"""Arguments and helpers shared by the subcommands that read a layer file."""

from __future__ import annotations

import argparse
import sys

from ..errors import ExprcError
from ..frontend.layer_set import LayerSet
from ..passes.pipeline import MODES
from ..selection import SELECTIONS


def add_layers_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("layers", metavar="LAYERS",
                   help="layer file: layers.json (exprc.layers/1 or a bare {name: expr} mapping), the paper code's "
                        "Pareto CSV, or Kozax's pareto_front.csv")
    p.add_argument("--select", default="val", choices=SELECTIONS,
                   help="for Pareto CSVs: pick per layer the lowest validation error (default), the lowest "
                        "training error, the simplest expression (the file's FLOPs or Complexity column), or the "
                        "knee of the front (see exprc.selection)")
    p.add_argument("--seed", type=int, default=None,
                   help="for the paper code's Pareto CSV: only rows of this Run_Seed")
    p.add_argument("--layer-name", default=None, metavar="NAME",
                   help="for a single Kozax pareto_front.csv: the layer it belongs to (default: from its folder)")


def add_mode_argument(p: argparse.ArgumentParser) -> None:
    from ..passes.lower_transcendentals import MODE_DESCRIPTIONS

    p.add_argument("--mode", default="auto", choices=("auto",) + MODES,
                   help="how tanh/sigmoid/exp are computed (default auto): "
                        + "; ".join(f"{mode}: {text}" for mode, text in MODE_DESCRIPTIONS.items()))


def read_layer_file(args: argparse.Namespace) -> LayerSet:
    from ..frontend.layer_files import read_layers

    return read_layers(args.layers, select=args.select, seed=args.seed, layer=args.layer_name)


def pick_layers(ls: LayerSet, names: list[str] | None) -> list:
    if not names:
        return list(ls)
    missing = [n for n in names if n not in ls.layers]
    if missing:
        raise ExprcError(f"no layer named {missing[0]!r} in {ls.source or 'the layer file'}; "
                         f"layers are: {', '.join(list(ls.layers)[:10])}{' ...' if len(ls) > 10 else ''}")
    return [ls.layers[n] for n in names]


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def add_context_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--d", type=int, default=768, metavar="D",
                   help="width of the timm ViT the fusion plan is made for (default 768, ViT-B)")
    p.add_argument("--mlp-hidden", type=int, default=None, metavar="H",
                   help="hidden width of its MLP (default 4*D)")


def context_from(args: argparse.Namespace):
    """The model context of the fusion plan (`--d`, `--mlp-hidden`)."""
    from ..codegen.planner import ViTContext

    for flag, value in (("--d", args.d), ("--mlp-hidden", args.mlp_hidden)):
        if value is not None and value <= 0:
            raise ExprcError(f"{flag} must be a positive integer, got {value}")
    return ViTContext(dim=args.d, mlp_hidden=args.mlp_hidden)
