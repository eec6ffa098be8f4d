"""Sample what each LayerNorm of a timm model does: forward hooks, images in, (x, y_pre) pairs out.

y_pre is computed from the layer's input as (x - mean) / sqrt(var + eps), exactly (in float64), rather than the
paper's (y - b) / (w + eps), which breaks for weights near zero or negative. Points are drawn uniformly over
images, tokens and features: each batch gets a share of a layer's points in proportion to its images, drawn
without replacement within the batch.

Needs torch and timm (the `timm` extra); imported by `exprc extract` only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import ExprcError
from .mappings import LayerMapping, Mappings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def load_model(name: str, checkpoint: str | None = None, random_init: bool = False,
               model_kwargs: dict | None = None) -> nn.Module:
    """A timm model in eval mode: weights from `checkpoint`, random (`random_init`), or timm's usual source."""
    import timm

    kwargs = dict(model_kwargs or {})
    if checkpoint is not None and random_init:
        raise ExprcError("--checkpoint and --random-init exclude each other")
    try:
        if checkpoint is not None:
            if not Path(checkpoint).is_file():
                raise ExprcError(f"checkpoint file not found: {checkpoint}")
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(checkpoint)}, **kwargs)
        elif random_init:
            model = timm.create_model(name, pretrained=False, **kwargs)
        else:
            model = timm.create_model(name, pretrained=True, **kwargs)
    except ExprcError:
        raise
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise ExprcError(f"timm has no model named {name!r}") from None
        raise _weights_error(name, checkpoint, e) from None
    except Exception as e:  # network and hub errors come in many types
        raise _weights_error(name, checkpoint, e) from None
    return model.eval()


def _weights_error(name: str, checkpoint: str | None, e: Exception) -> ExprcError:
    what = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if checkpoint is not None:
        return ExprcError(f"cannot load weights for {name} from {checkpoint} ({what})")
    return ExprcError(f"cannot load pretrained weights for {name} ({what}). Without network access pass "
                      "--checkpoint FILE (a local weights file), or --random-init to use random weights on purpose")


def layer_norms(model: nn.Module) -> dict[str, nn.LayerNorm]:
    """Every nn.LayerNorm (timm's subclasses included) by module path, in model order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)}


def find_images(directory: str | Path) -> list[Path]:
    """Image files under `directory` (an ImageFolder tree or a flat folder), sorted by path."""
    root = Path(directory)
    if not root.is_dir():
        raise ExprcError(f"image directory not found: {directory}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ExprcError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {directory}")
    return files


def data_config(model: nn.Module) -> dict:
    """timm's eval preprocessing for `model`, at the size the model was built for (e.g. `img_size=32`)."""
    from timm.data import resolve_data_config

    config = resolve_data_config({}, model=model)
    img_size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if img_size is not None:
        config["input_size"] = (config["input_size"][0], *tuple(img_size))
    return config


def image_batches(model: nn.Module, files: list[Path], batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of images resized and center-cropped by timm's eval transform for `model`."""
    from PIL import Image
    from timm.data import create_transform

    transform = create_transform(**data_config(model))
    for i in range(0, len(files), batch_size):
        images = []
        for f in files[i:i + batch_size]:
            try:
                with Image.open(f) as im:
                    images.append(transform(im.convert("RGB")))
            except OSError as e:
                raise ExprcError(f"cannot read image: {e}", where=str(f)) from None
        yield torch.stack(images)


def synthetic_batches(model: nn.Module, count: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """`count` images of standard-normal pixels (already in the normalized input space) at the model's size."""
    shape = tuple(data_config(model)["input_size"])
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, count, batch_size):
        yield torch.randn((min(batch_size, count - i), *shape), generator=gen)


class _LayerSampler:
    """A forward hook that keeps a quota of (x, y_pre) pairs of one LayerNorm per batch."""

    def __init__(self, module: nn.LayerNorm, rng: np.random.Generator):
        self.module = module
        self.rng = rng
        self.quota = 0
        self.xs: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []

    def __call__(self, module: nn.Module, inputs: tuple, output) -> None:
        if self.quota <= 0:
            return
        x = inputs[0].detach()
        width = math.prod(self.module.normalized_shape)
        rows = x.reshape(-1, width)
        total = rows.numel()
        if self.quota > total:
            raise ExprcError(f"a batch has {total} elements but {self.quota} points were asked of it: "
                             "lower --points or use more images")
        flat = self.rng.choice(total, size=self.quota, replace=False)
        row, col = torch.from_numpy(flat // width), torch.from_numpy(flat % width)
        picked = rows[row.to(rows.device)].double()  # only the rows sampled points fall in
        mean = picked.mean(dim=1)
        var = picked.var(dim=1, unbiased=False)
        xv = picked[torch.arange(len(flat), device=picked.device), col.to(picked.device)]
        yv = (xv - mean) / torch.sqrt(var + self.module.eps)
        self.xs.append(xv.float().cpu().numpy())
        self.ys.append(yv.float().cpu().numpy())


def extract_mappings(model: nn.Module, batches: Iterator[torch.Tensor], num_images: int, points: int, seed: int = 0,
                     device: str = "cpu", model_name: str | None = None, progress=None) -> Mappings:
    """Run `batches` (`num_images` images in all) through `model`; keep `points` pairs per LayerNorm."""
    norms = layer_norms(model)
    if not norms:
        raise ExprcError(f"model {model_name or type(model).__name__} has no nn.LayerNorm modules")
    samplers = {name: _LayerSampler(m, np.random.default_rng([seed, i])) for i, (name, m) in enumerate(norms.items())}
    handles = [m.register_forward_hook(samplers[name]) for name, m in norms.items()]
    model = model.to(device).eval()
    seen = 0
    try:
        with torch.inference_mode():
            for batch in batches:
                before, seen = seen, seen + len(batch)
                share = points * seen // num_images - points * before // num_images  # cumulative rounding
                for s in samplers.values():
                    s.quota = share
                model(batch.to(device))
                if progress is not None:
                    progress(len(batch))
    finally:
        for h in handles:
            h.remove()
    if seen != num_images:
        raise ExprcError(f"expected {num_images} images, the batches held {seen}")
    layers = {}
    for name, s in samplers.items():
        if not s.xs:
            raise ExprcError(f"layer {name} never ran in the forward pass")
        x, y = np.concatenate(s.xs), np.concatenate(s.ys)
        order = np.random.default_rng([seed, 7]).permutation(len(x))  # batches must not stay in blocks
        layers[name] = LayerMapping(x[order], y[order], float(s.module.eps), tuple(s.module.normalized_shape))
    return Mappings(layers, model_name)
