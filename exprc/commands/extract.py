"""exprc extract: sample every LayerNorm's mapping from a timm model into mappings.npz."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ExprcError

HELP = "sample each LayerNorm's (x, y_pre) mapping from a timm model into an .npz"
DESCRIPTION = """\
Run images through a timm model with forward hooks on every nn.LayerNorm and keep, per layer, --points pairs
(x, y_pre) drawn uniformly over images, tokens and features, where y_pre = (x - mean) / sqrt(var + eps) is
computed exactly from the layer's input. The result feeds `exprc evolve`.

Weights: --checkpoint FILE (a local file, loaded through timm's pretrained_cfg_overlay), --random-init (random
weights, for tests), or neither (timm's usual pretrained source, which needs network access or a warm cache).

examples:
  exprc extract --model vit_base_patch16_224 --checkpoint vit_b16.safetensors --images imagenet/val -o mappings.npz
  exprc extract --model vit_tiny_patch16_224 --model-arg depth=2 --model-arg img_size=32 --random-init \\
      --synthetic 8 --points 2000 -o tiny.npz
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="vit_base_patch16_224", help="timm model name (default: %(default)s)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for timm.create_model, e.g. depth=2 (repeatable)")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--checkpoint", metavar="FILE", help="local weights file (.pth, .bin, .safetensors, .npz)")
    w.add_argument("--random-init", action="store_true", help="random weights (no download; for tests)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", metavar="DIR", help="ImageFolder-style directory (or a flat folder of images)")
    src.add_argument("--synthetic", type=int, metavar="N", help="use N random images instead")
    p.add_argument("--max-images", type=int, default=256, metavar="N",
                   help="use at most N images from --images, a random subset (default: %(default)s)")
    p.add_argument("--points", type=int, default=50_000, help="pairs kept per layer (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for image choice and point sampling")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .npz to write")


def parse_model_args(items: list[str]) -> dict:
    """`KEY=VALUE` strings to kwargs; VALUE is read as JSON (numbers, true/false, lists) or else kept as text."""
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ExprcError(f"--model-arg expects KEY=VALUE, found {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


MAX_BLAME_TRIES = 8  # with more --model-arg values than this, all are named rather than one found


def model_arg_error(model: str, items: list[str], kwargs: dict) -> ExprcError | None:
    """Why timm cannot build `model` from the --model-arg values (`items`, parsed into `kwargs`), naming the one to
    blame when leaving it out lets the model build; None if the model builds with them all, or has none.

    Called after `load_model` failed: its message speaks of weights, which is wrong when the model itself could
    not be made."""
    import timm

    if not kwargs:
        return None
    problem = _build_error(timm, model, kwargs)
    if problem is None or (isinstance(problem, RuntimeError) and "Unknown model" in str(problem)):
        return None
    given = {item.partition("=")[0]: item for item in items}
    blamed = list(given.values())
    if 1 < len(kwargs) <= MAX_BLAME_TRIES:
        alone = [k for k in kwargs if _build_error(timm, model, {j: v for j, v in kwargs.items() if j != k}) is None]
        if len(alone) == 1:
            blamed = [given[alone[0]]]
    what = f"{type(problem).__name__}: {str(problem).splitlines()[0] if str(problem) else ''}"
    return ExprcError(f"--model-arg {', '.join(blamed)}: timm cannot build {model} with "
                      f"{'it' if len(blamed) == 1 else 'them'} ({what})")


def _build_error(timm, model: str, kwargs: dict) -> Exception | None:
    """What creating `model` with random weights and `kwargs` raises, or None if it works."""
    try:
        timm.create_model(model, pretrained=False, **kwargs)
    except Exception as e:  # a model's constructor may raise anything for a bad argument
        return e
    return None


def run(args: argparse.Namespace) -> int:
    from ..gp.deps import require

    require("extract", ("torch", "timm", "PIL", "tqdm"), "timm")  # tqdm comes with timm (huggingface_hub)

    import numpy as np
    import torch
    from tqdm import tqdm

    from ..gp.extract import extract_mappings, find_images, image_batches, load_model, synthetic_batches
    from ..gp.mappings import save_mappings

    for name in ("points", "batch_size", "max_images"):
        if getattr(args, name) <= 0:
            raise ExprcError(f"--{name.replace('_', '-')} must be positive")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model_kwargs = parse_model_args(args.model_arg)
    try:
        model = load_model(args.model, args.checkpoint, args.random_init, model_kwargs)
    except ExprcError:
        bad = model_arg_error(args.model, args.model_arg, model_kwargs)
        if bad is not None:
            raise bad from None
        raise  # the weights, the model's name or the checkpoint: load_model's own message says which
    if args.synthetic is not None:
        if args.synthetic <= 0:
            raise ExprcError("--synthetic must be positive")
        num_images = args.synthetic
        batches = synthetic_batches(model, num_images, args.batch_size, args.seed)
        source = {"synthetic": num_images}
    else:
        files = find_images(args.images)
        if len(files) > args.max_images:
            keep = np.sort(np.random.default_rng(args.seed).choice(len(files), args.max_images, replace=False))
            files = [files[i] for i in keep]
        num_images = len(files)
        batches = image_batches(model, files, args.batch_size)
        source = {"images": str(args.images), "num_images": num_images}
    with tqdm(total=num_images, desc="extract", unit="img", file=sys.stderr, disable=None) as bar:
        mappings = extract_mappings(model, batches, num_images, args.points, args.seed, device, args.model,
                                    progress=bar.update)
    weights = args.checkpoint or ("random" if args.random_init else "timm-pretrained")
    mappings.meta.update({"weights": weights, "model_kwargs": model_kwargs, "points": args.points,
                          "seed": args.seed, **source})
    save_mappings(args.output, mappings)
    print(f"wrote {args.output}: {len(mappings.layers)} layers x {args.points} points from {num_images} images "
          f"({args.model}, weights: {weights})")
    return 0
