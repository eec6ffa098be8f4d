"""Epilogue rows: a ViT block's `fc2`/`proj` + bias + residual + the norm that follows, fused or not.

Per shape: cuBLAS matmul + bias alone (`F.linear`, the floor a fused kernel should stay within 3% of); cuBLAS
followed by a separate residual add and LayerNorm, DyT, the paper's runtime or exprc's element-wise kernel;
`torch.compile(mode="max-autotune")` of the unfused module; and exprc's `FusedLinearExprNorm`, which writes the
residual stream r and y = f(r)*w + b from one kernel. All rows report 2*M*N*K / time as TFLOP/s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..frontend.layer_set import Layer
from . import baselines as B
from .cases import Case
from .config import BenchContext
from .elementwise import VIT_TOKENS, max_rel_err
from .exprc_runtime import fused_linear
from .paper_layers import EPILOGUE_LAYERS, QUICK_LAYERS, pick
from .paper_runtime import PaperRuntime, PaperRuntimeNorm

BENCH = "epilogue"
BASELINES = ("linear", "linear+add+layernorm")
PER_LAYER_BASELINES = ("linear+add+paper-runtime",)

# (name, M, K, N): ViT-B fc2 at batch 1, 32, 256; proj at batch 256; a 4096-wide layer
FULL_SHAPES = (("fc2", VIT_TOKENS, 3072, 768), ("fc2", 32 * VIT_TOKENS, 3072, 768),
               ("fc2", 256 * VIT_TOKENS, 3072, 768), ("proj", 256 * VIT_TOKENS, 768, 768),
               ("wide", 8192, 4096, 4096))
SMALL_SHAPES = (("fc2", 64, 256, 128),)
DTYPES = ("bfloat16",)  # f32 matmuls would compare cuBLAS FP32 with TF32 tiles: not like with like
MAX_AUTOTUNE = "max-autotune"


class LinearResidualNorm(nn.Module):
    """The unfused block tail: r = linear(x) + residual; y = norm(r); returns (r, y) like the fused module."""

    def __init__(self, linear: nn.Linear, norm: nn.Module):
        super().__init__()
        self.linear = linear
        self.norm = norm

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.linear(x) + residual
        return r, self.norm(r)


class _Inputs:
    def __init__(self, m: int, k: int, n: int, dtype: torch.dtype, device: str):
        g = torch.Generator(device="cpu").manual_seed(0)
        self.a = torch.randn(m, k, generator=g).to(device, dtype)
        self.residual = (2 * torch.randn(m, n, generator=g)).to(device, dtype)
        self.linear = nn.Linear(k, n).to(device, dtype).eval().requires_grad_(False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(n, k, generator=g) / math.sqrt(k))
            self.linear.bias.copy_(0.1 * torch.randn(n, generator=g))
        self.w = (1 + 0.1 * torch.randn(n, generator=g)).to(device, dtype)
        self.b = (0.1 * torch.randn(n, generator=g)).to(device, dtype)
        self._r64: torch.Tensor | None = None

    def r64(self) -> torch.Tensor:
        if self._r64 is None:
            lin = self.linear
            self._r64 = (self.a.double() @ lin.weight.double().T + lin.bias.double() + self.residual.double())
        return self._r64

    def checker(self, layer: Layer):
        """Max error of (r, y): r against float64 r, y against float64 f(r)*w + b of the r the module wrote."""
        def check(out) -> float:
            r, y = out
            ref_y = PaperRuntime(layer.ir)(r.double()) * self.w.double() + self.b.double()
            return max(max_rel_err(r, self.r64()), max_rel_err(y, ref_y))

        return check


def cases(ctx: BenchContext) -> Iterator[Case]:
    cfg = ctx.cfg
    layers = pick(ctx.layer_set, QUICK_LAYERS[-1:] if cfg.quick else EPILOGUE_LAYERS)
    for name, m, k, n in SMALL_SHAPES if cfg.small else FULL_SHAPES:
        for dtype_name in cfg.dtypes or DTYPES:
            yield from _shape_cases(ctx, name, m, k, n, dtype_name, layers)


def _shape_cases(ctx: BenchContext, name: str, m: int, k: int, n: int, dtype_name: str,
                 layers: list[Layer]) -> Iterator[Case]:
    cfg, dev = ctx.cfg, ctx.cfg.device
    t = _Inputs(m, k, n, getattr(torch, dtype_name), dev)
    a, res, lin = t.a, t.residual, t.linear

    def case(impl: str, setup, layer: Layer | None = None, check=None) -> Case:
        return Case(BENCH, impl, f"{name} M{m} K{k} N{n}", dtype_name, setup, layer=layer.name if layer else None,
                    flops=2.0 * m * n * k, check=check, dims={"M": m, "K": k, "N": n})

    def unfused(make_norm, compile_mode: str | None = None, names=("weight", "bias")):
        def setup():
            norm = B.with_affine(make_norm().to(dev, a.dtype), t.w, t.b, names).eval()
            mod = LinearResidualNorm(lin, norm).eval()
            fn = B.compiled(mod, cfg.quick, compile_mode) if compile_mode else mod
            return lambda: fn(a, res)

        return setup

    yield case("linear", lambda: lambda: F.linear(a, lin.weight, lin.bias))
    yield case("linear+add+layernorm", unfused(lambda: B.layer_norm(n)))
    yield case("linear+add+dyt", unfused(lambda: B.DynamicTanh(n)))
    yield case(f"compiled-{MAX_AUTOTUNE}-layernorm", unfused(lambda: B.layer_norm(n), MAX_AUTOTUNE))
    yield case(f"compiled-{MAX_AUTOTUNE}-dyt", unfused(lambda: B.DynamicTanh(n), MAX_AUTOTUNE))
    packages = ctx.packages(layers)
    for layer in layers:
        def paper(layer=layer):
            return PaperRuntimeNorm(layer.ir, n)

        yield case("linear+add+paper-runtime", unfused(paper), layer, t.checker(layer))
        yield case(f"compiled-{MAX_AUTOTUNE}-paper-runtime", unfused(paper, MAX_AUTOTUNE), layer, t.checker(layer))
        for mode in cfg.run_modes:
            def separate(mode=mode, layer=layer):
                mod = LinearResidualNorm(lin, packages.norm(mode, layer.name, t.w, t.b)).eval()
                return lambda: mod(a, res)

            def fused(mode=mode, layer=layer):
                mod = fused_linear(lin, packages.norm(mode, layer.name, t.w, t.b))
                return lambda: mod(a, res)

            yield case(f"linear+add+exprc-{mode}", separate, layer, t.checker(layer))
            yield case(f"exprc-fused-{mode}", fused, layer, t.checker(layer))
