"""`ExprNorm`: LayerNorm's parameters and state dict, any leading shape, backend choice, and the Triton path
(under the interpreter) agreeing with the eager one, gradients included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import exprc
from exprc import ExprNorm
from exprc.ir import evaluate

from derivative_reference import kinks  # tests/derivative_reference.py


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


EXPR = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"


def _reference(expr: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    f = torch.from_numpy(evaluate(exprc.parse(expr), x.double().numpy()))
    return f * w.double() + b.double()


def test_parameters_are_named_as_in_layernorm() -> None:
    norm = ExprNorm(12, EXPR)
    ln = torch.nn.LayerNorm(12)
    assert dict(norm.named_parameters()).keys() == dict(ln.named_parameters()).keys()
    assert torch.equal(norm.weight, torch.ones(12)) and torch.equal(norm.bias, torch.zeros(12))
    torch.nn.init.normal_(ln.weight)
    norm.load_state_dict(ln.state_dict())
    assert torch.equal(norm.weight, ln.weight)


def test_forward_over_the_last_dim_of_any_shape() -> None:
    norm = ExprNorm(12, EXPR, backend="torch")
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    for shape in [(12,), (3, 12), (2, 3, 4, 12)]:
        x = torch.randn(shape) * 3
        y = norm(x)
        assert y.shape == x.shape
        torch.testing.assert_close(y.double(), _reference(EXPR, x, norm.weight, norm.bias), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="got an input of shape"):
        norm(torch.randn(3, 13))


def test_from_layernorm_keeps_the_affine() -> None:
    ln = torch.nn.LayerNorm(8)
    torch.nn.init.normal_(ln.weight)
    torch.nn.init.normal_(ln.bias)
    norm = ExprNorm.from_layernorm(ln, "tanh(x)")
    x = torch.randn(5, 8)
    torch.testing.assert_close(norm(x), torch.tanh(x) * ln.weight + ln.bias)
    plain = ExprNorm.from_layernorm(torch.nn.LayerNorm(8, elementwise_affine=False), "tanh(x)")
    assert plain.weight is None and plain.bias is None and not list(plain.state_dict())
    torch.testing.assert_close(plain(x), torch.tanh(x))
    no_bias = ExprNorm.from_layernorm(torch.nn.LayerNorm(8, bias=False), "2*x")
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]
    torch.testing.assert_close(no_bias(x), 2 * x)


def test_built_from_ir_or_text_alike() -> None:
    x = torch.randn(4, 6)
    torch.testing.assert_close(ExprNorm(6, exprc.parse(EXPR))(x), ExprNorm(6, EXPR)(x))


def test_copies_share_the_kernel_and_pickles_carry_it() -> None:
    import copy
    import pickle

    norm = ExprNorm(6, EXPR)
    torch.nn.init.normal_(norm.weight)
    twin = copy.deepcopy(norm)
    assert twin.kernel is norm.kernel and twin.weight is not norm.weight
    restored = pickle.loads(pickle.dumps(norm))
    x = torch.randn(3, 6)
    torch.testing.assert_close(restored(x), norm(x))
    torch.testing.assert_close(twin(x), norm(x))


def test_backend_choice_on_cpu(monkeypatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    norm = ExprNorm(6, EXPR)
    assert not norm.uses_triton(torch.randn(2, 6))  # compiled kernels need CUDA: auto picks torch
    with pytest.raises(RuntimeError, match="cannot run"):
        ExprNorm(6, EXPR, backend="triton")(torch.randn(2, 6))
    with pytest.raises(ValueError, match="backend"):
        ExprNorm(6, EXPR, backend="cuda")
    assert ExprNorm(6, EXPR)(torch.randn(2, 6, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_triton_path_under_the_interpreter(triton_interpret) -> None:
    norm = ExprNorm(20, EXPR, backend="triton")
    eager = ExprNorm(20, EXPR, backend="torch")
    with torch.no_grad():
        for m in (norm, eager):
            m.weight.copy_(torch.linspace(-2, 2, 20))
            m.bias.copy_(torch.linspace(1, -1, 20))
    x = (torch.randn(3, 5, 20) * 4).requires_grad_()
    assert norm.uses_triton(x)
    y = norm(x)
    torch.testing.assert_close(y.double(), _reference(EXPR, x.detach(), norm.weight, norm.bias),
                               rtol=1e-5, atol=1e-5)
    x2 = x.detach().clone().requires_grad_()
    y2 = eager(x2)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    (y2 * g).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(norm.weight.grad, eager.weight.grad)
    torch.testing.assert_close(norm.bias.grad, eager.bias.grad)
    xb = x.detach().to(torch.bfloat16)
    yb = norm(xb)
    assert yb.dtype == torch.bfloat16
    ref = _reference(EXPR, xb.double(), norm.weight.detach(), norm.bias.detach()).numpy()
    assert np.all(np.abs(yb.detach().double().numpy() - ref) <= 2 * 2**-8 * (1 + np.abs(ref)))


@pytest.mark.gpu
def test_triton_on_cuda_matches_torch() -> None:
    norm = ExprNorm(768, EXPR).cuda()
    x = torch.randn(4, 197, 768, device="cuda") * 3
    with torch.no_grad():
        assert norm.uses_triton(x)
        torch.testing.assert_close(norm(x), norm.kernel.expr_torch(x) * norm.weight + norm.bias, rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("d", [1, 3, 100, 768])
def test_bf16_kernels_on_cuda_match_float64(d) -> None:
    """bf16 storage is widened two values a register by inline PTX (`widen.py`), which only a GPU runs: the forward
    and backward kernels against float64, at widths that pair (100, 768) and that do not (1, 3). Tolerances: the
    bf16 rounding of y and dx (2^-8 relative) on top of float32 arithmetic."""
    norm = ExprNorm(d, EXPR).cuda().to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(d))
        norm.bias.copy_(torch.randn(d))
    x = (torch.randn(37, d, device="cuda") * 3).to(torch.bfloat16).requires_grad_()
    assert norm.uses_triton(x)
    y = norm(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    w, b = norm.weight.detach().double().cpu(), norm.bias.detach().double().cpu()
    ref = _reference(EXPR, x.detach().double().cpu(), w, b)
    assert torch.all((y.detach().double().cpu() - ref).abs() <= 2 * 2**-8 * (1 + ref.abs()))
    x64 = x.detach().double().cpu().requires_grad_()
    ((norm.kernel.expr_torch(x64) * w + b) * dy.double().cpu()).sum().backward()
    smooth = ~torch.from_numpy(kinks(exprc.parse(EXPR), x64.detach().numpy()))  # bf16 inputs hit clip's bounds
    err = (x.grad.double().cpu() - x64.grad).abs() - 4 * 2**-8 * (1 + x64.grad.abs())
    assert smooth.float().mean() > 0.9 and torch.all(err[smooth] <= 0)
