"""Model rows: ViT-B/16 inference in bf16, images/s with LayerNorm, DyT and the GP expressions, eager and compiled,
against exprc's patched models (`exprc.patch_timm`, element-wise norms and fused).

Random-init weights (nothing is downloaded). Each row builds its own model from the same seed. Models are timed
from a CUDA graph where they can be captured, so the rows compare GPU work rather than Python launch overhead.
The smoke run uses a two-block 32-pixel ViT instead of ViT-B.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from . import baselines as B
from .cases import Case, Skip
from .config import BenchContext
from .exprc_runtime import patch_vit
from .paper_runtime import PaperRuntimeNorm

BENCH = "vit"
BASELINES = ("timm-layernorm",)
PER_LAYER_BASELINES = ()

FULL_BATCHES = (1, 32, 256)
SMALL_BATCHES = (2,)
DTYPES = ("bfloat16",)
MODEL = "vit_base_patch16_224"
SMALL_MODEL = {"img_size": 32, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2, "num_classes": 10}


def build_model(small: bool) -> nn.Module:
    """Without timm, the ImportError makes the row skipped (`cases.OPTIONAL_PACKAGES`)."""
    import timm
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(**SMALL_MODEL) if small else timm.create_model(MODEL, pretrained=False)
    return model.eval()


def norm_names(model: nn.Module) -> list[str]:
    return [name for name, mod in model.named_modules() if isinstance(mod, nn.LayerNorm)]


def replace_norms(model: nn.Module, make: Callable[[str, nn.LayerNorm], nn.Module]) -> nn.Module:
    """Every LayerNorm of `model` replaced by `make(name, layer_norm)`, keeping its weight and bias."""
    for name in norm_names(model):
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        ln = getattr(parent, attr)
        new = make(name, ln)
        setattr(parent, attr, B.with_affine(new, ln.weight, ln.bias))
    return model


def image_size(small: bool) -> int:
    return SMALL_MODEL["img_size"] if small else 224


def cases(ctx: BenchContext) -> Iterator[Case]:
    cfg = ctx.cfg
    small = cfg.small
    names = norm_names(build_model(small)) if _has_timm() else []
    layers = ctx.layer_set.layers
    missing = [n for n in names if n not in layers]
    gp_layers = [layers[n] for n in names if n in layers]
    for batch in cfg.batches or (SMALL_BATCHES if small else FULL_BATCHES):
        for dtype_name in cfg.dtypes or DTYPES:
            yield from _batch_cases(ctx, batch, dtype_name, gp_layers, missing)


def _has_timm() -> bool:
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


def _batch_cases(ctx: BenchContext, batch: int, dtype_name: str, gp_layers: list, missing: list[str]) -> Iterator[Case]:
    cfg, dev, small = ctx.cfg, ctx.cfg.device, ctx.cfg.small
    dtype = getattr(torch, dtype_name)
    size = image_size(small)
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(dev, dtype)
    gp = {layer.name: layer for layer in gp_layers}

    def case(impl: str, setup) -> Case:
        return Case(BENCH, impl, f"b{batch} {size}px", dtype_name, setup, images=batch, graph=True,
                    dims={"batch": batch, "image": size})

    def model_fn(patch: Callable[[nn.Module], nn.Module], compile_model: bool = False):
        def setup():
            model = patch(build_model(small).to(dev, dtype)).to(dev, dtype).eval()  # new modules moved too
            fn = B.compiled(model, cfg.quick) if compile_model else model
            return lambda: fn(images)

        return setup

    def gp_norms(model: nn.Module) -> nn.Module:
        if missing:
            raise Skip(f"the layer file has no expression for {', '.join(missing[:3])}")
        return replace_norms(model, lambda name, ln: PaperRuntimeNorm(gp[name].ir, ln.normalized_shape[0]))

    def dyt(model: nn.Module) -> nn.Module:
        return replace_norms(model, lambda name, ln: B.DynamicTanh(ln.normalized_shape[0]))

    def exprc_patch(mode: str, fuse: bool):
        def patch(model: nn.Module) -> nn.Module:
            if missing:
                raise Skip(f"the layer file has no expression for {', '.join(missing[:3])}")
            return patch_vit(model, ctx.packages(gp_layers).directory(mode), fuse=fuse)

        return patch

    def keep(model: nn.Module) -> nn.Module:
        return model

    yield case("timm-layernorm", model_fn(keep))
    yield case("timm-layernorm-compiled", model_fn(keep, True))
    yield case("dyt", model_fn(dyt))
    yield case("dyt-compiled", model_fn(dyt, True))
    yield case("gp-paper-runtime", model_fn(gp_norms))
    yield case("gp-paper-runtime-compiled", model_fn(gp_norms, True))
    for mode in cfg.run_modes:
        yield case(f"exprc-{mode}", model_fn(exprc_patch(mode, fuse=False)))
        yield case(f"exprc-{mode}-fused", model_fn(exprc_patch(mode, fuse=True)))
