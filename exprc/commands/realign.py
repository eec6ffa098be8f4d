"""exprc realign: fine-tune a ViT whose LayerNorms were replaced (the paper's re-alignment), one GPU to many."""

from __future__ import annotations

import argparse
import os

HELP = "fine-tune a model with GP, DyT or LayerNorm norms (variants A/F/D), one process or torchrun"
DESCRIPTION = """\
The paper's re-alignment (Section 2.3): load a timm model (weights from --checkpoint, or --random-init), replace
its LayerNorms keeping their weight and bias -- by the expressions of --layers (GP, through patch_timm: fused,
trained through the generated backward kernels), by DyT with a learnable alpha (--norm dyt), or not at all
(--norm ln, the baseline) -- and fine-tune:
  -A  affine only: the backbone frozen; the norms' weight and bias train (and DyT's alpha)
  -F  full fine-tuning
  -D  full, plus logit distillation from the original LayerNorm model (frozen, eval mode):
      L = (1 - lambda) CE + lambda tau^2 KL, lambda 0.5, tau 4
AdamW (0.9, 0.999), no schedule or warm-up, global batch 512, 20 epochs, DeiT augmentation (RandAugment
rand-m9-mstd0.5-inc1, color jitter 0.4, random erasing 0.25; no mixup, cutmix or label smoothing), evaluation
with a 0.875 center crop, and Table 3's learning rates, weight decay and stochastic depth for the variant and
norm kind; every one can be set.

Epoch 0 is evaluated right after the replacement (the "shock"), beside the original model. OUTPUT gets log.json
and log.csv (top-1/top-5 per epoch; `exprc plot --realign OUTPUT ...` draws them), checkpoint.pt (every
--checkpoint-every steps and each epoch, written atomically; --resume continues bit-for-bit on a CPU) and best.pt
(the weights of the best epoch). Data: an ImageFolder tree (DIR/train/CLASS/*.jpg, DIR/val/CLASS/*.jpg) or
--synthetic N random images. Many GPUs: start it with torchrun (DistributedDataParallel, NCCL; gloo on CPUs);
--batch-size stays global, --micro-batch sets what one GPU holds (the rest is gradient accumulation).

examples:
  exprc realign --checkpoint vit_b16.pth --layers layers.json --variant D --data imagenet/ -o runs/gp-d
  torchrun --nproc_per_node 8 -m exprc realign --checkpoint vit_b16.pth --layers layers.json --variant D \\
      --data imagenet/ --micro-batch 64 --workers 10 -o runs/gp-d
  exprc realign --norm dyt --variant A --checkpoint vit_b16.pth --data imagenet/ -o runs/dyt-a
  exprc realign --model vit_tiny_patch16_224 --model-arg img_size=32 --model-arg depth=2 --random-init \\
      --norm dyt --synthetic 512 --batch-size 32 --epochs 2 -o runs/try
  exprc realign --random-init --layers examples/vit_b16_paper.json --variant D --synthetic 8192 --batch-size 256 \\
      --max-steps 300 --bench-out bench/results/realign-h200.json     # epoch time vs the paper's eager modules
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.config import AMP_MODES, NORMS, PAPER_BATCH, PAPER_EPOCHS, VARIANTS, RealignConfig
    from ._common import add_mode_argument

    d = RealignConfig(output="")
    m = p.add_argument_group("model")
    m.add_argument("--model", default=d.model, help="timm model name (default: %(default)s)")
    m.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for timm.create_model, e.g. num_classes=10 (repeatable)")
    w = m.add_mutually_exclusive_group()
    w.add_argument("--checkpoint", metavar="FILE", help="pre-trained weights (.pth, .bin, .safetensors, .npz)")
    w.add_argument("--random-init", action="store_true", help="random weights, on purpose (tests, timing)")
    m.add_argument("--norm", choices=NORMS, default="gp",
                   help="gp: the expressions of --layers; dyt: DyT, tanh(alpha x) w + b; ln: LayerNorm kept "
                        "(default: gp)")
    m.add_argument("--layers", metavar="FILE|DIR",
                   help="for gp: layers.json, a Pareto CSV, or a kernels directory from `exprc compile`")
    m.add_argument("--select", default="val", choices=("val", "train", "simplest", "knee"),
                   help="for a Pareto CSV: which expression per layer (default: val)")
    m.add_argument("--layers-seed", type=int, metavar="SEED",
                   help="for the paper code's Pareto CSV: only rows of this Run_Seed (one of its five sets)")
    add_mode_argument(m)
    m.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="gp: replace the norms without fusing them into the matmuls (any model with LayerNorms)")
    m.add_argument("--backend", choices=("auto", "triton", "torch"), default="auto",
                   help="gp: kernels (default: auto: Triton on CUDA, generated torch code elsewhere)")
    m.add_argument("--dyt-alpha", type=float, default=d.dyt_alpha, help="dyt: initial alpha (default: 0.5)")
    t = p.add_argument_group("training (defaults: the paper's Table 3 for --norm and --variant)")
    t.add_argument("--variant", choices=VARIANTS, default="F", type=str.upper,
                   help="A affine only, F full, D full + distillation (default: F)")
    t.add_argument("--epochs", type=int, default=PAPER_EPOCHS, help="default: %(default)s")
    t.add_argument("--batch-size", type=int, default=PAPER_BATCH, help="global batch, all processes (default: 512)")
    t.add_argument("--micro-batch", type=int, metavar="N",
                   help="images per process and forward pass; the rest is accumulation (default: all at once)")
    t.add_argument("--lr", type=float, help="one learning rate for every group")
    t.add_argument("--lr-backbone", type=float, help="learning rate of everything but the norms")
    t.add_argument("--lr-affine", type=float, help="learning rate of the norms' weight and bias")
    t.add_argument("--lr-alpha", type=float, help="learning rate of DyT's alpha")
    t.add_argument("--weight-decay", type=float, help="AdamW's, on every group")
    t.add_argument("--drop-path", type=float, help="stochastic depth rate (timm's drop_path_rate)")
    t.add_argument("--distill-lambda", type=float, default=d.distill_lambda, help="-D: weight of KL (0.5)")
    t.add_argument("--distill-tau", type=float, default=d.distill_tau, help="-D: temperature (4)")
    t.add_argument("--amp", choices=AMP_MODES, default="auto",
                   help="mixed precision: auto = bf16 on CUDA, off on CPU; fp16 uses a GradScaler")
    t.add_argument("--seed", type=int, default=0, help="weights of --random-init, data order, augmentation")
    t.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps in all")
    t.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms on a GPU (slower); the CPU is deterministic anyway")
    data = p.add_argument_group("data")
    src = data.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="ImageFolder root holding train/ and val/")
    src.add_argument("--synthetic", type=int, metavar="N", help="N random training images (N/10 for validation)")
    data.add_argument("--no-augment", dest="augment", action="store_false",
                      help="no augmentation: training images get the evaluation transform")
    data.add_argument("--auto-augment", default=d.auto_augment, help="timm RandAugment spec (default: %(default)s)")
    data.add_argument("--color-jitter", type=float, default=d.color_jitter)
    data.add_argument("--reprob", type=float, default=d.reprob, help="random erasing probability (0.25)")
    data.add_argument("--crop-pct", type=float, default=d.crop_pct, help="evaluation center crop (0.875)")
    data.add_argument("--workers", type=int, default=d.workers, help="loader processes per process (default: 4)")
    run = p.add_argument_group("run")
    run.add_argument("-o", "--output", metavar="DIR", help="run directory (log, checkpoints); required for a run")
    run.add_argument("--resume", action="store_true", help="continue the run in OUTPUT from its checkpoint.pt")
    run.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="N",
                     help="optimizer steps between checkpoints within an epoch (0: only at epoch ends; "
                          "default: %(default)s)")
    run.add_argument("--no-eval-original", dest="eval_original", action="store_false",
                     help="do not evaluate the original LayerNorm model at epoch 0")
    run.add_argument("--device", help="torch device (default: cuda:LOCAL_RANK if available, else cpu)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--bench-out", metavar="FILE",
                     help="instead of a run: time --max-steps training steps with these norms and with the paper's "
                          "eager GP modules, and write images/s, epoch times and their ratio to FILE (JSON)")


def config_from(args: argparse.Namespace):
    """The RealignConfig of the parsed options (their names are the config's fields)."""
    import dataclasses

    from ..train.config import RealignConfig
    from .extract import parse_model_args

    fields = {f.name for f in dataclasses.fields(RealignConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values.update(output=args.output or "", model_args=parse_model_args(args.model_arg), progress=not args.quiet)
    return RealignConfig(**values)


def run(args: argparse.Namespace) -> int:
    from ..gp.deps import require

    require("realign", ("torch", "timm", "PIL", "tqdm"), "timm")

    from ..errors import ExprcError

    if not args.output and not args.bench_out:
        raise ExprcError("give the run directory: -o DIR")
    config = config_from(args)
    if args.bench_out:
        from ..train.bench import bench_realign

        bench_realign(config, args.bench_out)
        return 0
    from ..train import realign

    result = realign(config)
    best = max(result.epochs[1:], key=lambda r: r["top1"], default=None)
    if best is not None and os.environ.get("RANK", "0") == "0":
        print(f"{result.label}: best top-1 {best['top1']:.2f}% (epoch {best['epoch']}); log in {result.output}")
    return 0
