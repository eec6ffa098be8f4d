"""What the re-alignment tests share (no tests here): a small ImageFolder tree of PNGs they write, and a tiny
random-init timm ViT (2 blocks, width 32, 32x32 images, 4 classes) with its layer file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

CLASSES = 4
SIZE = 32
MODEL = "vit_tiny_patch16_224"
MODEL_ARGS = {"img_size": SIZE, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": CLASSES}
NORMS = ("blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1", "blocks.1.norm2", "norm")
EXPRESSIONS = {  # a clip, a tanh and a sigmoid: every kind of derivative the backward kernels have
    "blocks.0.norm1": "0.9*x + 0.3*clip(2*x)",
    "blocks.0.norm2": "1.1*tanh(0.8*x) + 0.2*x",
    "blocks.1.norm1": "2*sigmoid(x) - 1 + 0.5*x",
    "blocks.1.norm2": "0.7*x + 0.4*tanh(x + 0.1)",
    "norm": "1.2*tanh(x) + 0.1",
}


def write_image_folder(root: Path, train_per_class: int = 16, val_per_class: int = 4, seed: int = 0) -> Path:
    """root/train/cK/*.png and root/val/cK/*.png: each class a color and a bright quadrant, with noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colors = rng.integers(40, 215, size=(CLASSES, 3))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for k in range(CLASSES):
            folder = root / split / f"c{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                img = np.clip(colors[k] + rng.normal(0, 25, size=(SIZE, SIZE, 3)), 0, 255)
                q = (slice(0, SIZE // 2) if k % 2 else slice(SIZE // 2, SIZE),
                     slice(0, SIZE // 2) if k // 2 else slice(SIZE // 2, SIZE))
                img[q] = 255
                Image.fromarray(img.astype(np.uint8)).save(folder / f"{i}.png")
    return root


def write_layers(path: Path, expressions: dict | None = None) -> Path:
    path.write_text(json.dumps({"format": "exprc.layers/1", "model": MODEL, "layers": expressions or EXPRESSIONS}))
    return path


def model_flags() -> list[str]:
    flags = ["--model", MODEL, "--random-init"]
    for k, v in MODEL_ARGS.items():
        flags += ["--model-arg", f"{k}={v}"]
    return flags


def tiny_config(output: Path, data: Path, **overrides):
    from exprc.train import RealignConfig

    base = {"output": str(output), "model": MODEL, "model_args": dict(MODEL_ARGS), "random_init": True,
            "data": str(data), "batch_size": 16, "epochs": 1, "workers": 0, "progress": False,
            "eval_original": False, "checkpoint_every": 0}
    return RealignConfig(**{**base, **overrides})


def exprc(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exprc", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)
