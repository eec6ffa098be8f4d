"""The op tables and emitters: complete, readable, and every op (lowered ones included) computing what the
numpy reference computes, in Triton (interpreted) and in eager torch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import exprc
from exprc.codegen.emit_torch import emit_torch_function
from exprc.codegen.expr_module import generate_module_source
from exprc.codegen.emit_triton import emit_expr_function
from exprc.codegen.torch_ops import TORCH_OPS
from exprc.codegen.triton_ops import TRITON_OPS, f32_bits, f32_literal
from exprc.ir import F32, I32, Node, Op, clip, const, evaluate, inside, print_ir, unary, var, verify
from exprc.runtime.kernels import family_for
from exprc.runtime.kernels.support import import_source

X = var()


def test_every_op_has_an_entry() -> None:
    assert set(TRITON_OPS) == set(Op)
    assert set(TORCH_OPS) == set(Op)


def test_emitted_triton_function() -> None:
    src = emit_expr_function(exprc.parse("-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(x) + 0.227)"))
    assert src == '''\
@triton.jit
def expr_fn(x, FAST_ASM: tl.constexpr):
    tmp0 = -0.84 * x
    tmp1 = 2.0 * x
    tmp2 = tl.where(tmp1 < -5.0, -5.0, tl.where(tmp1 > 5.0, 5.0, tmp1))
    tmp3 = 1.31 * tmp2
    tmp4 = tmp0 + tmp3
    tmp5 = libdevice.tanh(x)
    tmp6 = tmp5 + 0.227
    tmp7 = libdevice.tanh(tmp6)
    tmp8 = 0.548 * tmp7
    tmp9 = tmp4 + tmp8
    return tmp9
'''


def test_emitted_torch_function() -> None:
    assert emit_torch_function(exprc.parse("0.5*clip(x, 0, 2) + x**5"), "f") == '''\
def f(x):
    tmp0 = torch.clamp(x, min=0.0, max=2.0)
    tmp1 = 0.5 * tmp0
    tmp2_sq2 = x * x
    tmp2_sq4 = tmp2_sq2 * tmp2_sq2
    tmp2 = x * tmp2_sq4
    tmp3 = tmp1 + tmp2
    return tmp3
'''


def test_clip_side_at_infinity_is_skipped() -> None:
    src = emit_expr_function(clip(X, -math.inf, 2.0))
    assert "tl.where(x > 2.0, 2.0, x)" in src and "inf" not in src and src.count("tl.where") == 1
    assert "torch.clamp(x, max=2.0)" in emit_torch_function(clip(X, -math.inf, 2.0))


CLIPS = [clip(X, -3.0, 3.0), clip(X, -1.0, 2.5), clip(X, 0.0, 2.0), clip(X, -2.0, 0.0), clip(X, -0.0, 1.0),
         clip(X, -math.inf, 2.0), clip(X, 0.0, math.inf), clip(X, -5.0, -1.0)]
ZEROS = np.array([0.0, -0.0, 1e-30, -1e-30, 3.0, -3.0, np.nan, np.inf, -np.inf], np.float32)


@pytest.mark.parametrize("path", ["triton", "torch"])
@pytest.mark.parametrize("k", range(len(CLIPS)))
def test_clip_matches_the_reference_bit_for_bit(tmp_path, path, k) -> None:
    """Every shape of bounds (symmetric, asymmetric, a bound of +-0, one side at infinity) gives the interpreter's
    values bit for bit, signed zeros and NaN included (y = f(x) * 1 + (-0.0) keeps f's zero's sign)."""
    e = CLIPS[k]
    module = _interpreted_module(tmp_path / f"c{k}.py", e)
    x = torch.from_numpy(np.concatenate([INPUTS, ZEROS]))
    ones, minus_zeros = torch.ones(x.numel()), torch.full((x.numel(),), -0.0)
    y = family_for("elementwise", module).apply(module, x, ones, minus_zeros) if path == "triton" else \
        module.expr_torch(x)
    ref = evaluate(e, x.numpy(), np.float32)
    assert np.array_equal(y.numpy().view(np.int32), ref.view(np.int32)), (print_ir(e), y, ref)


def test_constants_are_f32_literals() -> None:
    assert f32_literal(0.548) == "0.548" and f32_literal(0.0) == "0.0"
    assert f32_literal(-0.0) is None  # Triton reads the literal -0.0 as +0.0: built from its bits
    assert f32_literal(3.4028235e38) == repr(float(np.float32(3.4028235e38)))  # rounds to f32 max: a literal
    assert f32_literal(1e-40) is None and f32_literal(1e39) is None and f32_literal(math.inf) is None
    assert f32_bits(math.inf) == 0x7F800000 and f32_bits(1e39) == 0x7F800000
    assert np.array([f32_bits(1e-40)], np.int32).view(np.float32)[0] == np.float32(1e-40)
    src = emit_expr_function(X * 1e-40 + 1e39)
    assert "tl.full(x.shape, 71362, tl.int32).to(tl.float32, bitcast=True)" in src
    assert "e-40" not in src and "e+39" not in src
    assert "return tl.full(x.shape, 3.0, tl.float32)" in emit_expr_function(const(3.0))


def _every_op() -> Node:
    """An expression that uses every op, the lowered ones included."""
    k = clip(X, -3.0, 3.0)
    ki = Node(Op.CAST, I32, (Node(Op.ROUND, F32, (k,)),))
    scale = Node(Op.BITCAST, F32, (Node(Op.SHL, I32, (Node(Op.ADD, I32, (ki, const(127, I32))),), 23),))
    e = unary(Op.EXP_APPROX, clip(X, -80.0, 80.0)) * 1e-30 + unary(Op.TANH_APPROX, X) + scale
    e = e + (Node(Op.CAST, F32, (ki,)) - X) + Node(Op.POW, F32, (unary(Op.ABS, X),), 3)
    e = e + unary(Op.SIGMOID, X) / (1.0 + unary(Op.EXP, -unary(Op.ABS, X))) + clip(X, -2.0, math.inf)
    e = e + unary(Op.TANH, X) * Node(Op.POW, F32, (X,), 0) - Node(Op.POW, F32, (X,), 1) * 1e-40 + 1e39 * 0.0
    e = e + inside(X, -5.0, 5.0) + unary(Op.SIGN, X)  # the derivative's ops
    verify(e)
    assert {n.op for n in e.toposort()} == set(Op)
    return e


INPUTS = np.array([0.0, 1.0, -1.0, 2.5, -2.5, 0.3, -0.7, 0.5, 1.5, -0.5, 1e-30, -1e-30, 5.0, -5.0, 10.0, -20.0,
                   np.nan, np.inf, -np.inf, 1e30, -1e30, 3e38, -3e38], np.float32)


def _check(y: np.ndarray, ref: np.ndarray) -> None:
    with np.errstate(over="ignore"):
        expected = ref.astype(np.float32).astype(np.float64)
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.array_equal(y[np.isinf(expected)], expected[np.isinf(expected)])
    ok = np.isfinite(expected)
    assert np.all(np.abs(y[ok] - ref[ok]) <= 1e-5 * (1 + np.abs(ref[ok])))


def _module_source(e: Node) -> bytes:
    """The generated expression module of `e` exactly as given (not optimized)."""
    return generate_module_source("every_op", e, grad_root=e, optimized=e, expressions=(), mode="precise",
                                  cost={"flops_paper": 0, "flops_code": 0}).encode()


def _interpreted_module(path: Path, e: Node):
    import triton.language  # noqa: F401  (outside the interpreter: see conftest.triton_interpret)

    return import_source(path, _module_source(e), interpreted=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("path", ["triton", "torch"])
def test_every_op_matches_the_reference(tmp_path, path) -> None:
    e = _every_op()
    module = _interpreted_module(tmp_path / "every_op.py", e)
    x = torch.from_numpy(INPUTS)
    ones, zeros = torch.ones(x.numel()), torch.zeros(x.numel())
    y = family_for("elementwise", module).apply(module, x, ones, zeros) if path == "triton" else module.expr_torch(x)
    _check(y.double().numpy(), evaluate(e, INPUTS.astype(np.float64)))


@pytest.mark.parametrize("path", ["triton", "torch"])
def test_derivative_ops_match_the_reference_exactly(tmp_path, path) -> None:
    """inside and sign, at the bounds themselves, for NaN and +-inf (a side at +-inf is no bound), +-0: the Triton
    and torch codes give the interpreter's values bit for bit (0.0 at a bound and for NaN, as torch.clamp's
    gradient with scalar bounds; sign(+-0) = sign(NaN) = 0, as torch.sign)."""
    x = torch.from_numpy(INPUTS)
    ones, zeros = torch.ones(x.numel()), torch.zeros(x.numel())
    for i, e in enumerate([inside(X, -5.0, 5.0), inside(X, -math.inf, 5.0), inside(X, -5.0, math.inf),
                           inside(X, 1.0, 1.0), inside(X, -math.inf, math.inf), unary(Op.SIGN, X)]):
        module = _interpreted_module(tmp_path / f"d{i}.py", e)
        y = family_for("elementwise", module).apply(module, x, ones, zeros) if path == "triton" else \
            module.expr_torch(x)
        ref = evaluate(e, INPUTS, np.float32)
        assert not np.isnan(ref).any() and np.array_equal(y.numpy(), ref), (print_ir(e), y, ref)
    assert evaluate(inside(X, -5.0, 5.0), np.array([-5.0, 5.0, -4.5, np.nan])).tolist() == [0.0, 0.0, 1.0, 0.0]
    assert evaluate(inside(X, -math.inf, 5.0), np.array([-np.inf, 5.0])).tolist() == [1.0, 0.0]
    assert evaluate(unary(Op.SIGN, X), np.array([0.0, -0.0, np.nan, -1e-30, np.inf])).tolist() == [0, 0, 0, -1, 1]


def test_constant_expressions_make_tensors(tmp_path) -> None:
    """Ops on constants alone run on f32 tensors shaped like x (not Python doubles)."""
    e = unary(Op.TANH, const(0.5)) * X + Node(Op.POW, F32, (const(3.0),), 2)
    src = emit_expr_function(e)
    assert "libdevice.tanh(tl.full(x.shape, 0.5, tl.float32))" in src
    module = _interpreted_module(tmp_path / "consts.py", e)
    x = torch.linspace(-3, 3, 16)
    _check(module.expr_torch(x).double().numpy(), evaluate(e, x.double().numpy()))


def test_kernel_module_file_is_only_a_name(tmp_path) -> None:
    """Modules are imported from the given bytes, never from what is on disk at that path."""
    src = _module_source(exprc.parse("2*x"))
    path = tmp_path / "k.py"
    path.write_text("raise SystemExit('read from disk')\n")
    module = import_source(path, src)
    assert module.MODE == "precise" and not (Path(tmp_path) / "__pycache__").exists()
