"""FusedLinearExprNorm and FusedExprNormLinear: the Triton path (interpreted) and the eager fallback compute the
same thing as the unfused Linear + residual + ExprNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import exprc
from exprc.runtime.expr_norm import ExprNorm
from exprc.runtime.fused_linear import FusedExprNormLinear
from exprc.runtime.kernels import family_for

EXPR = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"
CHEAP = "0.541*clip(clip(2.35*x)) + 0.174"


def _randomize(*modules: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in modules:
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (p.shape[-1] ** -0.5 if p.dim() == 2 else 1.0))


def count_launches(monkeypatch, norm: ExprNorm, family: str = "matmul_epilogue") -> list:
    """Record each launch of the kernel `family` with `norm`'s expression (then run it): the shape of A."""
    calls = []
    kernels = family_for(family, norm.kernel)
    original = kernels.launch

    def spy(expr, a, *args, **kwargs):
        assert expr.__file__ == norm.kernel.__file__  # the module, or its view for a's dtype (auto mode)
        calls.append(tuple(a.shape))
        return original(expr, a, *args, **kwargs)

    monkeypatch.setattr(kernels, "launch", spy)
    return calls


def _unfused(module, x, residual):
    r = module.linear(x) if residual is None else residual + module.linear(x)
    return r, module.norm(r)


@pytest.fixture
def fused():
    m = exprc.FusedLinearExprNorm(48, 40, EXPR)
    _randomize(m)
    return m.eval()


def test_parameters_are_those_of_linear_and_layernorm(fused):
    assert list(fused.state_dict()) == ["linear.weight", "linear.bias", "norm.weight", "norm.bias"]
    source = nn.ModuleDict({"linear": nn.Linear(48, 40), "norm": nn.LayerNorm(40)})
    fused.load_state_dict(source.state_dict())  # strict: same names and shapes
    assert torch.equal(fused.norm.weight, source["norm"].weight)


@pytest.mark.parametrize("with_residual", [True, False])
def test_eager_fallback_is_the_unfused_math(fused, with_residual, monkeypatch):
    """On a CPU without the interpreter the kernel cannot run: the fallback is the same ops, bit for bit."""
    launches = count_launches(monkeypatch, fused.norm)
    x, res = torch.randn(2, 9, 48), torch.randn(2, 9, 40)
    residual = res if with_residual else None
    with torch.no_grad():
        r, y = fused(x, residual)
        r_ref, y_ref = _unfused(fused, x, residual)
    assert launches == []
    assert torch.equal(r, r_ref) and torch.equal(y, y_ref)
    assert r.shape == (2, 9, 40)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_interpreted_kernel_matches_unfused(triton_interpret, dtype, monkeypatch):
    m = exprc.FusedLinearExprNorm(48, 40, EXPR, dtype=dtype)
    _randomize(m)
    launches = count_launches(monkeypatch, m.norm)
    x, res = torch.randn(3, 7, 48).to(dtype), torch.randn(3, 7, 40).to(dtype)
    with torch.no_grad():
        r, y = m(x, res)
        r_ref, y_ref = _unfused(m, x, res)
    assert launches == [(21, 48)]
    if dtype == torch.float32:
        torch.testing.assert_close(r, r_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    else:  # r rounded once (fused) or twice (unfused), and toward zero by the interpreter: a few bf16 ulps
        assert ((r.float() - r_ref.float()).abs() <= 2**-6 * r_ref.float().abs() + 1e-2).all()
        assert ((y.float() - y_ref.float()).abs() <= 2**-5 * y_ref.float().abs() + 5e-2).all()


def test_autograd_runs_the_fused_kernel_and_its_backward(triton_interpret, fused, monkeypatch):
    """Training through the fused kernel: its backward (the norm's part in one kernel, the matmul's by torch)
    gives the gradients of the unfused Linear + residual + ExprNorm."""
    launches = count_launches(monkeypatch, fused.norm)
    x, res = torch.randn(4, 48, requires_grad=True), torch.randn(4, 40, requires_grad=True)
    r, y = fused(x, res)
    (r.sum() + y.square().sum()).backward()
    assert launches == [(4, 48)]
    got = [t.grad.clone() for t in (x, res, fused.linear.weight, fused.linear.bias, fused.norm.weight,
                                    fused.norm.bias)]
    for t in (x, res, *fused.parameters()):
        t.grad = None
    unfused = FusedLinearExprNorm_reference(fused)
    r2, y2 = unfused(x, res)
    (r2.sum() + y2.square().sum()).backward()
    want = [x.grad, res.grad, fused.linear.weight.grad, fused.linear.bias.grad, fused.norm.weight.grad,
            fused.norm.bias.grad]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def FusedLinearExprNorm_reference(m):
    """The same parameters, unfused and on the generated torch code (its own backward op)."""
    def forward(x, residual):
        r = residual + m.linear(x)
        return r, ExprNorm.forward(_TorchBackend(m.norm), r)

    return forward


class _TorchBackend:
    """`m.norm` seen with backend "torch": ExprNorm.forward without the Triton kernel."""

    def __init__(self, norm):
        self._norm = norm

    def __getattr__(self, name):
        return getattr(self._norm, name)

    def uses_triton(self, x):
        return False


def test_backends(triton_interpret, monkeypatch):
    m = exprc.FusedLinearExprNorm(16, 8, "tanh(x)", backend="torch")
    launches = count_launches(monkeypatch, m.norm)
    with torch.no_grad():
        m(torch.randn(2, 16))
    assert launches == []
    with pytest.raises(ValueError, match="backend"):
        exprc.FusedLinearExprNorm(16, 8, "tanh(x)", backend="cuda")


def test_triton_backend_refuses_what_it_cannot_run():
    m = exprc.FusedLinearExprNorm(16, 8, "tanh(x)", backend="triton")  # imported compiled: no CPU kernels
    with torch.no_grad(), pytest.raises(RuntimeError, match="triton backend cannot run"):
        m(torch.randn(2, 16))


def test_layer_scale_and_no_bias(triton_interpret):
    from exprc.runtime.fused_linear import linear_residual_norm

    norm = ExprNorm(24, EXPR)
    linear = nn.Linear(32, 24, bias=False)
    _randomize(norm, linear)
    gamma = torch.rand(24) + 0.5
    x, res = torch.randn(5, 32), torch.randn(5, 24)
    with torch.no_grad():
        r, y = linear_residual_norm(x, linear.weight, None, norm, residual=res, scale=gamma)
        r_ref = res + gamma * linear(x)
    torch.testing.assert_close(r, r_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, norm(r_ref), rtol=1e-5, atol=1e-5)


def test_empty_batch(triton_interpret, fused):
    with torch.no_grad():
        r, y = fused(torch.randn(0, 5, 48), torch.randn(0, 5, 40))
    assert r.shape == y.shape == (0, 5, 40)


@pytest.mark.parametrize("interpret", [False, True], ids=["eager", "interpreted"])
def test_prologue_module_matches_norm_then_linear(interpret, monkeypatch, request):
    if interpret:
        request.getfixturevalue("triton_interpret")
    norm, linear = ExprNorm(40, CHEAP), nn.Linear(40, 56)
    _randomize(norm, linear, seed=4)
    fused = FusedExprNormLinear(norm, linear)
    launches = count_launches(monkeypatch, norm, "matmul_prologue")
    x = torch.randn(2, 11, 40) * 2
    with torch.no_grad():
        out = fused(x)
        ref = linear(norm(x))
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        assert len(launches) == int(interpret)
        norm.weight.mul_(-2.0)  # the folded weights follow a changed parameter
        torch.testing.assert_close(fused(x), linear(norm(x)), rtol=1e-5, atol=1e-5)
    assert list(fused.state_dict()) == ["norm.weight", "norm.bias", "linear.weight", "linear.bias"]
