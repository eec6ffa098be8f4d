"""A tiny timm ViT trained with LayerNorm on scikit-learn's digits, on a CPU in minutes.

Its LayerNorm mappings are what `exprc evolve` is tested and benchmarked on, so they must bend: y_pre is x
divided by its token's std, and where tokens' stds differ several-fold the large |x| come from wide tokens and are
divided more (the S-curve of the DyT paper). The model: timm's `vit_tiny_patch16_224` at 8x8 pixels, 1x1 patches
(64 pixel tokens and a class token), width 48, 4 blocks, 3 heads: 9 LayerNorms, about 117k parameters. Trained
at a constant learning rate (2e-3, AdamW, weight decay 0.05, 60 epochs), its pixel tokens' stds spread about 3x
(5th to 95th percentile) from the second LayerNorm on, and a least-squares line falls 1-5.5 points of
R² short of the GP's expressions on 8 of 9 layers (`python bench/gp_baselines.py`). What did not bend them
(poly5 against line on models trained each way, examples/tiny_digits/README.md): 2x2 patches (16 tokens) with
the earlier one-cycle schedule (line within 0.5 point of the best fit), longer training, no weight decay, 8
blocks; the one-cycle schedule's annealing straightens them again (1x1 patches, 80 epochs: within 0.5 point).
Images go through timm's own eval transform for the model, the one `exprc extract` applies, so extraction sees
what training saw.

Written to OUT: `model.safetensors` (the weights), `model.json` (timm name, keyword arguments, accuracy, the
training settings), each atomically.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..atomic_write import atomic_write
from .digits import load_digit_arrays, split_indices

MODEL = "vit_tiny_patch16_224"
MODEL_KWARGS = {"img_size": 8, "patch_size": 1, "embed_dim": 48, "depth": 4, "num_heads": 3, "num_classes": 10}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0
    schedule: str = "constant"  # "constant" (lr throughout, no warm-up) or "onecycle" (10% warm-up, cosine to ~0)


def create_model():
    import timm

    return timm.create_model(MODEL, pretrained=False, **MODEL_KWARGS)


def digit_tensors(model, split: str):
    """(images (n, 3, 8, 8) through timm's eval transform of `model`, labels (n,)) for a split of the digits."""
    import torch
    from PIL import Image
    from timm.data import create_transform

    from ..gp.extract import data_config

    transform = create_transform(**data_config(model))
    images, labels = load_digit_arrays()
    idx = split_indices(split, len(images))
    xs = torch.stack([transform(Image.fromarray(images[i]).convert("RGB")) for i in idx])
    return xs, torch.from_numpy(labels[idx])


def accuracy(model, xs, ys) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        return float((model(xs).argmax(1) == ys).float().mean())


def train_tiny_vit(out: str | os.PathLike, config: TrainConfig = TrainConfig(),
                   progress: Callable[[int, float], None] | None = None, limit: int | None = None) -> dict:
    """Train from scratch with AdamW (constant learning rate by default); write the weights and model.json into `out`.
    `limit`: only the first `limit` training images (quick checks)."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    torch.manual_seed(config.seed)
    start = time.perf_counter()
    model = create_model()
    train_x, train_y = digit_tensors(model, "train")
    if limit is not None:
        train_x, train_y = train_x[:limit], train_y[:limit]
    val_x, val_y = digit_tensors(model, "val")
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(train_x) // config.batch_size)
    if config.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.1)
    elif config.schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    else:
        raise ValueError(f"schedule must be onecycle or constant, found {config.schedule!r}")
    gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(config.epochs):
        model.train()
        total = 0.0
        for batch in torch.randperm(len(train_x), generator=gen).split(config.batch_size):
            loss = F.cross_entropy(model(train_x[batch]), train_y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(batch)
        if progress is not None:
            progress(epoch + 1, total / len(train_x))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(out / "model.safetensors", binary=True) as f:
        f.write(_safetensors_bytes(save_file, state))
    info = {"model": MODEL, "model_kwargs": MODEL_KWARGS, "train": asdict(config),
            "train_accuracy": accuracy(model, train_x, train_y), "val_accuracy": accuracy(model, val_x, val_y),
            "train_images": len(train_x), "val_images": len(val_x),
            "seconds": round(time.perf_counter() - start, 1)}
    with atomic_write(out / "model.json") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return info


def _safetensors_bytes(save_file, state) -> bytes:
    """safetensors writes to a path only: through a scratch file, so the caller can write atomically."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        save_file(state, os.path.join(d, "w.safetensors"))
        return Path(d, "w.safetensors").read_bytes()


def model_arguments() -> list[str]:
    """The `--model-arg KEY=VALUE` list that makes `exprc extract` build this model."""
    return [f"{k}={v}" for k, v in MODEL_KWARGS.items()]
