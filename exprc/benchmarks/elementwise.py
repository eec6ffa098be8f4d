"""Element-wise rows: `y = f(x)*w + b` by exprc's kernels against LayerNorm, DyT, the paper's runtime and a copy.

Per shape and dtype: a device-to-device copy (the bandwidth ceiling), LayerNorm (`F.layer_norm`, Liger's,
torch.compile'd), DyT (eager as in the DyT repository, Liger's `LigerDyT`, torch.compile'd), and per layer the
paper's runtime (one eager op per IR node) and exprc's compiled norm in each precision mode. GB/s counts the
useful traffic, x read once and y written once, for every implementation alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..frontend.layer_set import Layer
from . import baselines as B
from .cases import Case
from .config import BenchContext
from .paper_layers import QUICK_LAYERS, pick
from .paper_runtime import PaperRuntime, PaperRuntimeNorm

BENCH = "kernels"
BASELINES = ("copy", "torch-layernorm", "dyt-eager")
PER_LAYER_BASELINES = ("paper-runtime",)

VIT_TOKENS = 197
# tokens x width: ViT-B at batch 1, 32, 256 (the last >= 64 MB in f32 and bf16), and an LLM width
FULL_SHAPES = ((VIT_TOKENS, 768), (32 * VIT_TOKENS, 768), (256 * VIT_TOKENS, 768), (2048, 4096), (16384, 4096))
SMALL_SHAPES = ((VIT_TOKENS, 768),)
DTYPES = ("float32", "bfloat16")


def max_rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / (1 + |ref|), NaN where exactly one of them is NaN."""
    out = out.double()
    both_nan = torch.isnan(out) & torch.isnan(ref)
    err = ((out - ref).abs() / (1 + ref.abs())).masked_fill(both_nan, 0.0)
    return float(err.max())


class _Inputs:
    """x, w, b of one shape and dtype, and the float64 reference output of the layer checked last."""

    def __init__(self, m: int, d: int, dtype: torch.dtype, device: str):
        g = torch.Generator(device="cpu").manual_seed(0)
        self.x = (3 * torch.randn(m, d, generator=g)).to(device, dtype)
        self.w = (1 + 0.1 * torch.randn(d, generator=g)).to(device, dtype)
        self.b = (0.1 * torch.randn(d, generator=g)).to(device, dtype)
        self.out = torch.empty_like(self.x)
        self._ref: tuple[str, torch.Tensor] | None = None

    def reference(self, layer: Layer) -> torch.Tensor:
        if self._ref is None or self._ref[0] != layer.name:
            self._ref = None  # free the previous one first
            f = PaperRuntime(layer.ir)
            self._ref = (layer.name, f(self.x.double()) * self.w.double() + self.b.double())
        return self._ref[1]

    def checker(self, layer: Layer):
        return lambda out: max_rel_err(out, self.reference(layer))


def cases(ctx: BenchContext) -> Iterator[Case]:
    cfg = ctx.cfg
    shapes = SMALL_SHAPES if cfg.small else FULL_SHAPES
    layers = pick(ctx.layer_set, QUICK_LAYERS) if cfg.quick else list(ctx.layer_set)
    for m, d in shapes:
        for dtype_name in cfg.dtypes or DTYPES:
            yield from _shape_cases(ctx, m, d, dtype_name, layers)


def _shape_cases(ctx: BenchContext, m: int, d: int, dtype_name: str, layers: list[Layer]) -> Iterator[Case]:
    cfg, dev = ctx.cfg, ctx.cfg.device
    t = _Inputs(m, d, getattr(torch, dtype_name), dev)
    x, w, b = t.x, t.w, t.b

    def case(impl: str, setup, layer: Layer | None = None, check=None) -> Case:
        return Case(BENCH, impl, f"{m}x{d}", dtype_name, setup, layer=layer.name if layer else None,
                    bytes=2 * x.numel() * x.element_size(), check=check, dims={"tokens": m, "d": d})

    def module(make):
        mod = B.with_affine(make().to(dev, x.dtype), w, b).eval()
        return lambda: mod(x)

    def liger_dyt():
        mod = B.with_affine(B.liger_dyt(d, dev).to(dev, x.dtype), w, b, ("gamma", "beta")).eval()
        return lambda: mod(x)

    def compiled_layer_norm():
        fn = B.compiled(B.functional_layer_norm(w, b), cfg.quick)
        return lambda: fn(x)

    def compiled_dyt():
        fn = B.compiled(B.with_affine(B.DynamicTanh(d).to(dev, x.dtype), w, b).eval(), cfg.quick)
        return lambda: fn(x)

    ln = B.functional_layer_norm(w, b)
    yield case("copy", lambda: B.copy_into(t.out, x))
    yield case("torch-layernorm", lambda: lambda: ln(x))
    yield case("liger-layernorm", lambda: module(lambda: B.liger_layer_norm(d, dev)))
    yield case("compiled-layernorm", compiled_layer_norm)
    yield case("dyt-eager", lambda: module(lambda: B.DynamicTanh(d)))
    yield case("liger-dyt", liger_dyt)
    yield case("compiled-dyt", compiled_dyt)
    packages = ctx.packages(layers)
    for layer in layers:
        yield case("paper-runtime", lambda layer=layer: module(lambda: PaperRuntimeNorm(layer.ir, d)), layer,
                   t.checker(layer))
        for mode in cfg.run_modes:
            def exprc_norm(mode=mode, layer=layer):
                norm = packages.norm(mode, layer.name, w, b)
                return lambda: norm(x)

            yield case(f"exprc-{mode}", exprc_norm, layer, t.checker(layer))
