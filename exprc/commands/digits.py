"""exprc digits: scikit-learn's digits as an ImageFolder, and the tiny ViT trained on them."""

from __future__ import annotations

import argparse
import sys

HELP = "write scikit-learn's digits as an ImageFolder, or train the tiny ViT of examples/tiny_digits on them"
DESCRIPTION = """\
The data behind examples/tiny_digits: scikit-learn's digits (1,797 8x8 images, inside its wheel: no download),
a fixed 80/20 train/validation split.

  exprc digits images DIR [--split val]   ImageFolder tree DIR/<label>/<index>.png, for `exprc extract --images`
  exprc digits train -o DIR [--epochs N]  train the tiny timm ViT (4 blocks, width 48, 8x8 pixels, 1x1 patches)
                                          with LayerNorm from scratch on the training split at a constant learning
                                          rate: DIR/model.safetensors and DIR/model.json (a few minutes on one core)

Needs the `digits` extra (scikit-learn, timm). The committed example was made by:
  exprc digits train -o examples/tiny_digits
  exprc digits images /tmp/digits_val --split val
  exprc extract --model vit_tiny_patch16_224 --checkpoint examples/tiny_digits/model.safetensors \\
      --model-arg img_size=8 --model-arg patch_size=1 --model-arg embed_dim=48 --model-arg depth=4 \\
      --model-arg num_heads=3 --model-arg num_classes=10 --images /tmp/digits_val --max-images 359 \\
      --points 5000 --device cpu -o examples/tiny_digits/mappings.npz
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    img = sub.add_parser("images", help="write the images as an ImageFolder tree")
    img.add_argument("directory", metavar="DIR", help="the tree to write (must not exist, unless --overwrite)")
    img.add_argument("--split", choices=("train", "val", "all"), default="val",
                     help="which images (default: %(default)s, the 359 the tiny model was not trained on)")
    img.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    tr = sub.add_parser("train", help="train the tiny ViT")
    tr.add_argument("-o", "--output", required=True, metavar="DIR", help="where model.safetensors/.json go")
    tr.add_argument("--epochs", type=int, default=60, help="epochs over the 1,438 training images (default: 60)")
    tr.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (default: 2e-3)")
    tr.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay (default: 0.05)")
    tr.add_argument("--schedule", choices=("constant", "onecycle"), default="constant",
                    help="learning rate schedule (default: constant; onecycle: 10%% warm-up, then cosine to ~0, "
                         "the earlier default, whose annealed model maps nearly linearly)")
    tr.add_argument("--seed", type=int, default=0, help="torch seed (default: 0)")
    tr.add_argument("--limit", type=int, default=None, metavar="N",
                    help="train on the first N training images only (for quick checks)")


def run(args: argparse.Namespace) -> int:
    from ..errors import ExprcError
    from ..gp.deps import require

    if args.action == "images":
        require("digits images", ("sklearn", "PIL"), "digits")
        from ..data.digits import write_image_folder

        n = write_image_folder(args.directory, args.split, overwrite=args.overwrite)
        print(f"wrote {args.directory}: {n} images ({args.split} split) as <label>/<index>.png")
        return 0
    require("digits train", ("sklearn", "torch", "timm", "safetensors"), "digits")
    import torch

    from ..data.tiny_vit import TrainConfig, model_arguments, train_tiny_vit

    torch.set_num_threads(1)  # a 117k-parameter model: more threads only wait for each other (5x slower on 2 cores)

    if args.epochs < 1 or (args.limit is not None and args.limit < 1):
        raise ExprcError("--epochs and --limit must be positive")

    def progress(epoch: int, loss: float) -> None:
        print(f"epoch {epoch}/{args.epochs}: training loss {loss:.4f}", file=sys.stderr, flush=True)

    config = TrainConfig(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, seed=args.seed,
                         schedule=args.schedule)
    info = train_tiny_vit(args.output, config, progress, args.limit)
    print(f"wrote {args.output}/model.safetensors and model.json: validation accuracy {info['val_accuracy']:.3f} "
          f"({info['seconds']:.0f} s)\nextract its mappings with: exprc extract --model {info['model']} "
          f"--checkpoint {args.output}/model.safetensors "
          + " ".join(f"--model-arg {a}" for a in model_arguments()) + " --images DIR -o mappings.npz")
    return 0
