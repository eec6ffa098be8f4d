"""exprc's PyTorch operators: registered, checked with `torch.library.opcheck`, differentiable with the generated
derivative (the backward kernel under Triton's interpreter, the generated torch code elsewhere), without NaN where
the derivative is finite, and one backward kernel plus one reduction per norm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import exprc
from exprc.frontend.layer_files import read_layers
from exprc.runtime.expr_norm import ExprNorm
from exprc.runtime.fused_linear import FusedLinearExprNorm
from exprc.runtime.kernels import family

from derivative_reference import kinks, torch_derivative  # tests/derivative_reference.py

DEEP = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"


def _norm(expr: str, d: int, mode: str = "precise", backend: str = "auto", dtype=torch.float32, seed: int = 0):
    norm = ExprNorm(d, expr, mode=mode, backend=backend, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(d, generator=g, dtype=torch.float64))
        norm.bias.copy_(torch.randn(d, generator=g, dtype=torch.float64))
    return norm


# -- opcheck ------------------------------------------------------------------------------------------------------
def test_opcheck_every_operator() -> None:
    key = _norm(DEEP, 16).key
    g = torch.Generator().manual_seed(1)

    def t(*shape, grad=False):
        return torch.randn(*shape, generator=g).requires_grad_(grad)

    cases = [
        (torch.ops.exprc.expr_norm.default, (t(3, 5, 16, grad=True), t(16, grad=True), t(16, grad=True), key, False)),
        (torch.ops.exprc.expr_norm_backward.default, (t(3, 5, 16), t(3, 5, 16), t(16), None, key, False)),
        (torch.ops.exprc.expr_norm_backward.default, (t(3, 5, 16), t(3, 5, 16), t(16), t(3, 5, 16), key, False)),
        (torch.ops.exprc.linear_residual_norm.default,
         (t(3, 5, 8, grad=True), t(16, 8, grad=True), t(16, grad=True), t(16, grad=True), t(3, 5, 16, grad=True),
          t(16, grad=True), t(16, grad=True), key, True, False)),
        (torch.ops.exprc.linear_residual_norm.default,
         (t(4, 8, grad=True), t(16, 8, grad=True), None, None, None, t(16), t(16), key, True, False)),
        (torch.ops.exprc.norm_linear.default, (t(3, 16), t(8, 16), t(8), key, False)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


# -- gradients ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
def test_paper_gradients_through_the_kernel_and_the_torch_code(triton_interpret, mode) -> None:
    """dx of every paper expression, by the backward kernel (interpreted) and by the torch code, against float64
    autograd of the unlowered expression. Bounds: precise 1e-5 relative to (1 + |ref|); fast and horner are
    absolute (1 - t*t cancels near saturation): 2e-3 fast (tanh.approx's 2^-11 times the chain), 1e-4 horner."""
    tol = {"precise": 1e-5, "fast": 2e-3, "horner": 1e-4}[mode]
    x = torch.linspace(-9, 9, 4 * 48).reshape(4, 48)
    for layer in read_layers(Path(__file__).resolve().parents[1] / "examples" / "vit_b16_paper.json"):
        ref = torch_derivative(layer.ir, x.double().numpy())
        away = ~kinks(layer.ir, x.double().numpy(), 1e-3)  # at a clip bound f32 and f64 may take other sides
        for backend in ("triton", "torch"):
            norm = ExprNorm(48, layer.expr, mode=mode, backend=backend)  # w = 1, b = 0: dx = f'(x)
            xr = x.clone().requires_grad_()
            norm(xr).backward(torch.ones_like(xr))
            got = xr.grad.double().numpy()
            assert not np.isnan(got).any(), (layer.name, backend)
            err = (np.abs(got - ref) / (1 + (np.abs(ref) if mode == "precise" else 0)))[away]
            assert err.max() <= tol, (layer.name, backend, mode, float(err.max()))


@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_a_steep_saturating_sigmoid_has_zero_not_nan_gradient(triton_interpret, mode, backend) -> None:
    """Autograd through 1/(1+exp(-a)) gave inf/inf = NaN where the derivative is 0; one NaN ends a fine-tuning."""
    norm = ExprNorm(4, "sigmoid(40*x)", mode=mode, backend=backend)
    x = torch.tensor([[-30.0, 30.0, -3.0, 0.0]], requires_grad=True)
    norm(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[0, :3].abs().max() < 1e-30
    assert torch.isfinite(norm.weight.grad).all()


def test_weight_and_bias_gradients_match_the_torch_code(triton_interpret) -> None:
    x = torch.randn(2, 37, 48) * 3
    dy = torch.randn(2, 37, 48)
    grads = {}
    for backend in ("triton", "torch"):
        norm = _norm(DEEP, 48, backend=backend)
        xr = x.clone().requires_grad_()
        norm(xr).backward(dy)
        grads[backend] = (xr.grad, norm.weight.grad, norm.bias.grad)
    for a, b in zip(grads["triton"], grads["torch"], strict=True):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-5)


def test_gradcheck_of_a_fused_block_in_float64() -> None:
    block = FusedLinearExprNorm(6, 5, DEEP, backend="torch", dtype=torch.float64)
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    res = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, r: block(a, r), (x, res))


class _CountOps:
    """The aten ops that ran inside the block, nested ones included (inside exprc's operators too)."""

    def __enter__(self):
        self._prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        self._prof.__enter__()
        return self

    def __exit__(self, *exc):
        self._prof.__exit__(*exc)
        self.ops = [e.name.removeprefix("aten::") for e in self._prof.events() if e.name.startswith("aten::")]


def test_backward_is_one_kernel_and_one_reduction_per_norm(triton_interpret, monkeypatch) -> None:
    norm = _norm(DEEP, 48)
    kernels = family("elementwise_backward", interpreted=True)
    launches = []
    original = kernels.launch
    monkeypatch.setattr(kernels, "launch", lambda *a, **k: launches.append(1) or original(*a, **k))
    x = (torch.randn(3, 37, 48) * 3).requires_grad_()
    y = norm(x)
    with _CountOps() as counted:
        y.backward(torch.randn_like(y))
    assert launches == [1]
    assert counted.ops.count("sum") == 1  # the partial sums of dw and db, reduced once
    assert not {"tanh", "exp", "sigmoid", "clamp"} & set(counted.ops)  # no eager expression code in backward


def test_fused_block_backward_is_one_norm_kernel_plus_matmuls(triton_interpret, monkeypatch) -> None:
    block = FusedLinearExprNorm(32, 48, DEEP)
    kernels = family("elementwise_backward", interpreted=True)
    launches = []
    original = kernels.launch
    monkeypatch.setattr(kernels, "launch", lambda *a, **k: launches.append(1) or original(*a, **k))
    x, res = torch.randn(5, 32, requires_grad=True), torch.randn(5, 48, requires_grad=True)
    r, y = block(x, res)
    with _CountOps() as counted:
        (r.square().sum() + y.sum()).backward()
    assert launches == [1]
    assert counted.ops.count("mm") == 2  # dA = dR @ W and dW = dR^T @ A
    assert not {"tanh", "exp", "sigmoid", "clamp"} & set(counted.ops)


def test_operators_find_modules_by_key_from_the_kernel_cache(tmp_path) -> None:
    """A fresh process knows no expression module: the operator imports it from the kernel cache by its key."""
    import subprocess
    import sys

    norm = _norm(DEEP, 8)
    x = torch.randn(2, 8)
    want = norm(x).detach()
    code = ("import torch, exprc.runtime.ops\n"
            f"x = torch.tensor({x.tolist()})\n"
            f"w = torch.tensor({norm.weight.tolist()}); b = torch.tensor({norm.bias.tolist()})\n"
            f"print(torch.ops.exprc.expr_norm(x, w, b, {norm.key!r}, False).tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    torch.testing.assert_close(torch.tensor(eval_list(out.stdout)), want)
    with pytest.raises(exprc.ExprcError, match="no generated module e_0000"):
        torch.ops.exprc.expr_norm(x, norm.weight, norm.bias, "e_0000000000000000", False)


def eval_list(text: str) -> list:
    import json

    return json.loads(text)


# -- first call: a tile from the table, no autotuning ----------------------------------------------------------------
def test_the_default_launch_takes_its_tile_from_the_table_never_the_autotuner(monkeypatch) -> None:
    """A fused kernel's first call on a GPU must not autotune inside the forward: the launch gets a configuration
    from `tiles.default_tile` (here with a compiled expression module and H100-like limits, the launch itself
    stubbed: there is no GPU), and triton's Autotuner is never run. EXPRC_AUTOTUNE=1 asks for autotuning."""
    import triton
    from triton.runtime.autotuner import Autotuner

    from exprc.compiler import expression_module
    from exprc.runtime import ops
    from exprc.runtime.kernels import tiles

    monkeypatch.setattr(Autotuner, "run", lambda *a, **k: pytest.fail("the autotuner ran"))
    monkeypatch.setattr(ops, "device_limits", lambda x: (132, 232448))
    seen = []

    class Family:
        @staticmethod
        def launch(expr, *args, config=None, **kwargs):
            seen.append(config)
            return config

    monkeypatch.setattr(ops, "family_for", lambda name, expr: Family)
    monkeypatch.setattr(ops, "_on", lambda x: __import__("contextlib").nullcontext())
    expr = expression_module(DEEP, interpreted=False)
    x = torch.empty(0, dtype=torch.bfloat16)
    for m in (197, 197 * 8, 197 * 256):
        ops._launch_tuned("matmul_epilogue", expr, m, 768, 3072, x)
    # the tiles in order of preference (the launcher passes over any whose kernel spills): the table's first
    assert all(isinstance(cs, tuple) and all(isinstance(c, triton.Config) for c in cs) for cs in seen)
    blocks = [(cs[0].kwargs["BLOCK_M"], cs[0].kwargs["BLOCK_N"]) for cs in seen]
    assert blocks[0] == (64, 64) and blocks[-1] == (128, 128)  # fill 132 SMs first, then the biggest tile
    want = tiles.default_tile(tiles.MATMUL_CONFIGS, 197 * 256, 768, 2, 132, 232448)
    assert seen[-1][0].kwargs == want.meta() and seen[-1][0].num_warps == want.num_warps
    seen.clear()
    monkeypatch.setenv("EXPRC_AUTOTUNE", "1")
    ops._launch_tuned("matmul_epilogue", expr, 4096, 768, 3072, x)
    assert seen == [None]  # the autotuned launch: no configuration given


class _Launches:
    """Stands in for torch.library.wrap_triton: records the constexprs of each launch instead of launching."""

    def __init__(self) -> None:
        self.metas: list[dict] = []

    def __call__(self, fn):
        return self

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.metas.append(kwargs)


def test_a_tile_whose_kernel_spills_is_passed_over_for_the_next_in_the_table(monkeypatch) -> None:
    """The sm_80 sweep found tiles of the table that spill registers with some expressions (horner's long
    polynomials, one Triton release's f32 tile): the default launch compiles the table's choice, and when ptxas
    reports spills it runs the next tile of `tiles.ranked_tiles` that does not spill. What ptxas reports is stubbed
    (no GPU): here the first-ranked tile spills. A traced call (torch.compile) takes what the eager call found,
    without compiling."""
    import torch.library

    from exprc.compiler import expression_module
    from exprc.runtime import ops
    from exprc.runtime.kernels import tiles

    limits = (108, 166912)  # an A100
    monkeypatch.setattr(ops, "device_limits", lambda x: limits)
    monkeypatch.setattr(ops, "_on", lambda x: __import__("contextlib").nullcontext())
    launches = _Launches()
    monkeypatch.setattr(torch.library, "wrap_triton", launches)
    m, n, k = 197 * 256, 768, 3072
    ranked = tiles.ranked_tiles(tiles.MATMUL_CONFIGS, m, n, 2, *limits)
    assert ranked[0] == tiles.default_tile(tiles.MATMUL_CONFIGS, m, n, 2, *limits)
    assert sorted(map(repr, ranked)) == sorted(repr(c) for c in tiles.MATMUL_CONFIGS
                                              if c.block_k * 2 <= tiles.MAX_K_SLICE_BYTES)
    compiled = []

    def spills(plain, config, args, flags, grid, even_k):
        compiled.append(config.kwargs)
        spilled = 8 if config.kwargs == ranked[0].meta() else 0
        tiles._SPILLS[tiles._spill_key(plain, config, args, flags, even_k)] = spilled
        return spilled

    monkeypatch.setattr(tiles, "_SPILLS", {})
    monkeypatch.setattr(tiles, "compiled_spills", spills)
    expr = expression_module(DEEP, interpreted=False)
    a = torch.empty(1, 1, dtype=torch.bfloat16).expand(m, k)
    weight = torch.empty(1, 1, dtype=torch.bfloat16).expand(n, k)
    out = torch.empty(1, 1, dtype=torch.bfloat16).expand(m, n)
    args = (a, weight, None, None, None, None, None, None, out)
    ops._launch_tuned("matmul_epilogue", expr, m, n, k, a, *args)
    assert compiled == [ranked[0].meta(), ranked[1].meta()]  # compiled up to the first tile that does not spill
    ran = {key: launches.metas[-1][key] for key in ranked[1].meta()}
    assert ran == ranked[1].meta()

    compiled.clear()
    monkeypatch.setattr(tiles, "_traced", lambda args: True)
    ops._launch_tuned("matmul_epilogue", expr, m, n, k, a, *args)
    assert compiled == [] and {key: launches.metas[-1][key] for key in ranked[1].meta()} == ranked[1].meta()


def test_when_every_tile_spills_the_one_that_spills_least_runs() -> None:
    from exprc.runtime.kernels.tiles import first_spill_free

    asked = []

    def spills(c):
        asked.append(c)
        return {"a": 16, "b": 8, "c": 0, "d": 0}[c]

    assert first_spill_free("abcd", spills) == "c" and asked == ["a", "b", "c"]
    assert first_spill_free("ab", spills) == "b"
    assert first_spill_free("a", spills) == "a"


def test_default_tiles_suit_the_element_size_and_the_device() -> None:
    from exprc.runtime.kernels import tiles

    for configs in (tiles.MATMUL_CONFIGS, tiles.PROLOGUE_CONFIGS):
        for m in (1, 197, 1576, 50432):
            for size in (2, 4):
                for sms, smem in ((132, 232448), (108, 166912), (46, 101376)):
                    c = tiles.default_tile(configs, m, 768, size, sms, smem)
                    assert c in configs and c.block_k * size <= tiles.MAX_K_SLICE_BYTES
                    assert c.shared_memory_bytes(size) <= smem
