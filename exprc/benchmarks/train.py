"""Training rows: forward + backward, what re-alignment (the paper's fine-tuning) runs thousands of times.

- per norm (tokens x 768): LayerNorm (`F.layer_norm`, Liger's), DyT (eager as in its repository, Liger's
  `LigerDyT`), the paper's runtime (one eager op per IR node, autograd through each), exprc's eager-autograd path
  of before (the generated torch code under autograd), and exprc's operator (the generated backward kernel:
  one kernel plus one reduction);
- the fused block tail (ViT-B fc2 + bias + residual + norm): Linear + add + LayerNorm against
  `FusedLinearExprNorm` (the norm's backward in one kernel, the matmul's by cuBLAS);
- a ViT training step (AMP bf16 on a GPU): timm with LayerNorm, the paper's GP modules, exprc's fused model.
Each row times `y = m(x); y.backward(dy)` (images/s for the model rows); checked rows compare dx with float64
autograd of the unlowered expression.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..frontend.layer_set import Layer
from . import baselines as B
from .cases import Case, Skip
from .config import BenchContext
from .elementwise import VIT_TOKENS, max_rel_err
from .exprc_runtime import fused_linear, patch_vit
from .paper_layers import QUICK_LAYERS, pick
from .paper_runtime import PaperRuntime, PaperRuntimeNorm
from .vit import build_model, image_size, norm_names, replace_norms

BENCH = "train"
BASELINES = ("torch-layernorm",)
PER_LAYER_BASELINES = ("paper-runtime", "exprc-eager-autograd")

FULL_SHAPES = ((32 * VIT_TOKENS, 768),)
SMALL_SHAPES = ((VIT_TOKENS, 64),)
FULL_BATCH, SMALL_BATCH = 64, 2


def cases(ctx: BenchContext) -> Iterator[Case]:
    cfg = ctx.cfg
    layers = pick(ctx.layer_set, QUICK_LAYERS) if cfg.quick else list(ctx.layer_set)
    dtype = "bfloat16" if cfg.device == "cuda" else "float32"
    for m, d in SMALL_SHAPES if cfg.small else FULL_SHAPES:
        yield from _norm_cases(ctx, m, d, dtype, layers)
        yield from _block_cases(ctx, m, d, dtype, layers)
    yield from _model_cases(ctx, dtype)


class _Grads:
    """x (requiring grad), dy, w and b of one shape, and the float64 reference dx of a layer."""

    def __init__(self, m: int, d: int, dtype: torch.dtype, device: str):
        g = torch.Generator().manual_seed(0)
        self.x = (3 * torch.randn(m, d, generator=g)).to(device, dtype).requires_grad_()
        self.dy = torch.randn(m, d, generator=g).to(device, dtype)
        self.w = (1 + 0.1 * torch.randn(d, generator=g)).to(device, dtype)
        self.b = (0.1 * torch.randn(d, generator=g)).to(device, dtype)

    def step(self, fn):
        """The timed call: forward and backward; returns dx."""
        def run():
            self.x.grad = None
            fn(self.x).backward(self.dy)
            return self.x.grad

        return run

    def checker(self, layer: Layer):
        def check(dx: torch.Tensor) -> float:
            with torch.enable_grad():
                x = self.x.detach().double().requires_grad_()
                (PaperRuntime(layer.ir)(x) * self.w.double() + self.b.double()).backward(self.dy.double())
            return max_rel_err(dx, x.grad)

        return check


def _norm_cases(ctx: BenchContext, m: int, d: int, dtype_name: str, layers: list[Layer]) -> Iterator[Case]:
    dev = ctx.cfg.device
    t = _Grads(m, d, getattr(torch, dtype_name), dev)

    def case(impl, setup, layer=None, check=None) -> Case:
        return Case(BENCH, impl, f"{m}x{d}", dtype_name, setup, layer=layer.name if layer else None,
                    bytes=4 * t.x.numel() * t.x.element_size(), check=check, dims={"tokens": m, "d": d}, grad=True)

    def module(make, names=("weight", "bias")):
        def setup():
            mod = make().to(dev, t.x.dtype)
            with torch.no_grad():
                for name, value in zip(names, (t.w, t.b), strict=True):
                    getattr(mod, name).copy_(value)
            return t.step(mod)

        return setup

    yield case("torch-layernorm", module(lambda: B.layer_norm(d)))
    yield case("liger-layernorm", module(lambda: B.liger_layer_norm(d, dev)))
    yield case("dyt-eager", module(lambda: B.DynamicTanh(d)))
    yield case("liger-dyt", module(lambda: B.liger_dyt(d, dev), ("gamma", "beta")))
    packages = ctx.packages(layers)
    for layer in layers:
        check = t.checker(layer)
        yield case("paper-runtime", module(lambda layer=layer: PaperRuntimeNorm(layer.ir, d)), layer, check)
        for mode in ctx.cfg.run_modes:
            def eager_autograd(mode=mode, layer=layer):
                expr = packages.norm(mode, layer.name, t.w, t.b).kernel
                return t.step(lambda x: (expr.expr_torch(x.float()) * t.w.float() + t.b.float()).to(x.dtype))

            def exprc_norm(mode=mode, layer=layer):
                return t.step(packages.norm(mode, layer.name, t.w, t.b).requires_grad_(True).train())

            if mode == ctx.cfg.run_modes[0]:
                yield case("exprc-eager-autograd", eager_autograd, layer, check)
            yield case(f"exprc-{mode}", exprc_norm, layer, check)


def _block_cases(ctx: BenchContext, m: int, d: int, dtype_name: str, layers: list[Layer]) -> Iterator[Case]:
    """fc2 (K = 4d) + bias + residual + norm, forward and backward."""
    dev, dtype, k = ctx.cfg.device, getattr(torch, dtype_name), 4 * d
    g = torch.Generator().manual_seed(1)
    a = torch.randn(m, k, generator=g).to(dev, dtype).requires_grad_()
    residual = torch.randn(m, d, generator=g).to(dev, dtype).requires_grad_()
    dr, dy = (torch.randn(m, d, generator=g).to(dev, dtype) for _ in range(2))

    def case(impl, setup, layer=None) -> Case:
        return Case(BENCH, impl, f"fc2 M{m} K{k} N{d}", dtype_name, setup, layer=layer.name if layer else None,
                    flops=3 * 2.0 * m * k * d, dims={"M": m, "K": k, "N": d}, grad=True)

    def step(block):
        def run():
            a.grad = residual.grad = None
            r, y = block(a, residual)
            torch.autograd.backward((r, y), (dr, dy))
            return a.grad

        return run

    def unfused():
        linear, norm = nn.Linear(k, d).to(dev, dtype), B.layer_norm(d).to(dev, dtype)
        return step(lambda x, res: ((r := F.linear(x, linear.weight, linear.bias) + res), norm(r)))

    yield case("linear+add+layernorm", unfused)
    packages = ctx.packages(layers)
    for layer in layers:
        for mode in ctx.cfg.run_modes:
            def fused(mode=mode, layer=layer):
                w, b = torch.ones(d, device=dev, dtype=dtype), torch.zeros(d, device=dev, dtype=dtype)
                norm = packages.norm(mode, layer.name, w, b).requires_grad_(True).train()
                return step(fused_linear(nn.Linear(k, d).to(dev, dtype), norm).train())

            yield case(f"exprc-fused-{mode}", fused, layer)


def _model_cases(ctx: BenchContext, dtype_name: str) -> Iterator[Case]:
    """One training step of a ViT (ViT-B/16; the smoke run: a 2-block 32-pixel one): images/s."""
    cfg, dev, small = ctx.cfg, ctx.cfg.device, ctx.cfg.small
    batch = SMALL_BATCH if small else FULL_BATCH
    size = image_size(small)
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(dev)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev == "cuda" else contextlib.nullcontext()

    def case(impl, patch) -> Case:
        def setup():
            model = patch(build_model(small).to(dev)).to(dev).train().requires_grad_(True)

            def run():
                with autocast:
                    loss = model(images).float().square().mean()
                loss.backward()
                return loss

            return run

        return Case(BENCH, impl, f"b{batch} {size}px step", "amp-bf16" if dev == "cuda" else dtype_name, setup,
                    images=batch, dims={"batch": batch, "image": size}, grad=True)

    layers = ctx.layer_set.layers

    def gp_layers(model):
        names = norm_names(model)
        missing = [n for n in names if n not in layers]
        if missing:
            raise Skip(f"the layer file has no expression for {', '.join(missing[:3])}")
        return [layers[n] for n in names]

    def gp_eager(model):
        found = {layer.name: layer for layer in gp_layers(model)}
        return replace_norms(model, lambda name, ln: PaperRuntimeNorm(found[name].ir, ln.normalized_shape[0]))

    def exprc_fused(model):
        return patch_vit(model, ctx.packages(gp_layers(model)).directory(cfg.run_modes[0]), fuse=True)

    yield case("timm-layernorm", lambda model: model)
    yield case("gp-paper-runtime", gp_eager)
    yield case(f"exprc-{cfg.run_modes[0]}-fused", exprc_fused)
