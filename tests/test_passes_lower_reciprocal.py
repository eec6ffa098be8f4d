"""horner's software reciprocal (`lower_reciprocal.py`): its error over every f32 mantissa, its range guard, NaN and
overflow, and horner's code without divisions (so without MUFU; the compiled SASS is checked in
test_codegen_compile.py and test_bench_static.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exprc.compiler import compile_expr
from exprc.frontend.layer_files import read_layers
from exprc.ir import Op, clip, evaluate, var
from exprc.passes.lower_reciprocal import HI, MAGIC, STEPS, reciprocal, reciprocal_positive

ROOT = Path(__file__).resolve().parents[1]
MANTISSAS = np.arange(0x3F800000, 0x40000000, 7, dtype=np.int64).astype(np.int32).view(np.float32)  # [1, 2)


def ulps(y: np.ndarray, d: np.ndarray) -> np.ndarray:
    ref = 1.0 / d.astype(np.float64)
    return np.abs(y.astype(np.float64) - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)


@pytest.mark.parametrize("scale", [1.0, 2.0**-120, 2.0**100, 2.0**124], ids=["1", "2^-120", "2^100", "2^124"])
def test_reciprocal_ir_within_one_and_a_half_ulp_rounding_every_step(scale) -> None:
    """The IR evaluated in f32, each operation rounded (no fused multiply-add): 1.5 ulp at most."""
    d = (MANTISSAS * np.float32(scale)).astype(np.float32)
    y = evaluate(reciprocal_positive(var()), d, np.float32)
    assert ulps(y, d).max() <= 1.5


def test_reciprocal_with_fma_is_correctly_rounded_but_for_half_an_ulp() -> None:
    """The GPU contracts `1 - d*y` and `y + y*e` into FFMA: emulated here (one rounding per fused step), the
    result is within 0.501 ulp (the bound lower_reciprocal states)."""
    d = MANTISSAS
    y = (np.int32(MAGIC) - d.view(np.int32)).view(np.float32)
    for _ in range(STEPS):
        e = (1.0 - d.astype(np.float64) * y).astype(np.float32)
        y = (y.astype(np.float64) + y.astype(np.float64) * e).astype(np.float32)
    assert ulps(y, d).max() <= 0.501


def test_reciprocal_guard_by_range() -> None:
    x = var()
    assert reciprocal(clip(x, 0.5, 4.0)) is not None and reciprocal(clip(x, -4.0, -0.5)) is not None
    assert reciprocal(clip(x, -1.0, 1.0)) is None  # spans zero: IEEE division stays
    assert reciprocal(clip(x, 1e-39, 1.0)) is None  # a subnormal divisor: the seed is wrong there
    clamped = reciprocal(clip(x, 1.0, np.inf))  # >= 1, unbounded: clamped at 2^125, flushed to 0 past it
    assert any(n.op is Op.CLIP and n.arg == (-np.inf, HI) for n in clamped.toposort())
    d = np.array([1.0, 4e37, 5e37, 3e38, np.inf, np.nan], np.float32)
    y = evaluate(clamped, d, np.float32)
    assert y[0] == 1.0 and 0 < y[1] < 2.6e-38 and y[2:5].tolist() == [0, 0, 0] and np.isnan(y[5])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_horner_tanh_and_sigmoid_limits_and_nan() -> None:
    x = np.array([0.0, -0.0, 20.0, -20.0, 1e30, -1e30, np.inf, -np.inf, np.nan], np.float32)
    tanh = evaluate(compile_expr("tanh(x)", "horner").root, x, np.float32)
    sig = evaluate(compile_expr("sigmoid(x)", "horner").root, x, np.float32)
    np.testing.assert_array_equal(tanh, [0, 0, 1, -1, 1, -1, 1, -1, np.nan])
    np.testing.assert_array_equal(sig[[0, 1, 2, 4, 5, 6, 7, 8]], [0.5, 0.5, 1, 1, 0, 1, 0, np.nan])  # exact limits
    assert sig[3] == pytest.approx(1 / (1 + np.exp(20.0)), rel=1e-6)
    t = np.linspace(-12, 12, 20001, dtype=np.float32)
    assert np.abs(evaluate(compile_expr("tanh(x)", "horner").root, t, np.float32)
                  - np.tanh(t.astype(np.float64))).max() < 4e-7
    assert np.abs(evaluate(compile_expr("sigmoid(x)", "horner").root, t, np.float32)
                  - 1 / (1 + np.exp(-t.astype(np.float64)))).max() < 2e-7


@pytest.mark.parametrize("layer", list(read_layers(ROOT / "examples" / "vit_b16_paper.json")),
                         ids=lambda layer: layer.name)
def test_horner_code_has_no_division_or_library_call(layer) -> None:
    c = compile_expr(layer.ir, "horner")
    for root in (c.root, c.grad.root):
        assert not [n for n in root.toposort() if n.op in (Op.DIV, Op.TANH, Op.SIGMOID, Op.EXP)]
    code = c.source()
    assert "div_rn" not in code and "libdevice.exp" not in code and "libdevice.tanh" not in code
