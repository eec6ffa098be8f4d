"""The paper's runtime (one eager torch op per IR node) against the float64 numpy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from exprc import parse, read_layers
from exprc.benchmarks.paper_layers import PAPER_TABLE4, paper_layer_set
from exprc.benchmarks.paper_runtime import PaperRuntime, PaperRuntimeNorm
from exprc.ir import Op, evaluate, unary, var

EDGES = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 5.0, -5.0, 44.5, -44.5, 1e30, -1e30, 3e38, -3e38,
         np.inf, -np.inf, np.nan]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vit_b16_paper.json"


def inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([np.linspace(-60, 60, 2001), rng.normal(0, 4, 500), EDGES])


def assert_matches(out: np.ndarray, ref: np.ndarray, rtol: float) -> None:
    assert np.array_equal(np.isnan(out), np.isnan(ref)), "NaN in one and not the other"
    ok = ~np.isnan(ref)
    inf = np.isinf(ref[ok])
    assert np.array_equal(out[ok][inf], ref[ok][inf])
    fin_out, fin_ref = out[ok][~inf], ref[ok][~inf]
    err = np.abs(fin_out - fin_ref) / (1 + np.abs(fin_ref))
    assert err.max(initial=0) <= rtol, f"max error {err.max()}"


class CountOps(TorchDispatchMode):
    """Counts the aten ops dispatched while active."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", list(PAPER_TABLE4))
def test_paper_layer_float64_matches_reference(name):
    root = parse(PAPER_TABLE4[name])
    x = inputs()
    out = PaperRuntime(root)(torch.from_numpy(x)).numpy()
    assert_matches(out, evaluate(root, x, np.float64), 1e-13)


@pytest.mark.parametrize("name", list(PAPER_TABLE4))
def test_paper_layer_float32_close_to_reference(name):
    root = parse(PAPER_TABLE4[name])
    x = inputs()
    x = x[np.abs(x) < 1e4]  # f32 rounding of huge inputs is not what this checks
    out = PaperRuntime(root)(torch.from_numpy(x).float()).double().numpy()
    assert_matches(out, evaluate(root, x, np.float64), 2e-6)


@pytest.mark.parametrize("text", [
    "1/(x + 2)", "3 - x", "x - 3", "3/x", "x/3", "abs(x)**3", "exp(-x)", "sigmoid(x)", "x**0", "neg(x)",
    "2*3*x + 4", "clip(x, -1, 2)", "clip(x, -1e300, 1e300)*x", "x*x*x - x",
])
def test_every_frontend_op(text):
    root = parse(text)
    x = inputs()
    out = PaperRuntime(root)(torch.from_numpy(x)).numpy()
    assert_matches(out, evaluate(root, x, np.float64), 1e-13)


@pytest.mark.parametrize("name", ["blocks.0.norm1", "blocks.2.norm1", "blocks.11.norm2", "norm"])
def test_one_torch_op_per_node(name):
    root = parse(PAPER_TABLE4[name])
    f = PaperRuntime(root)
    non_leaf = sum(1 for n in root.toposort() if n.op not in (Op.CONST, Op.INPUT))
    assert f.op_count == non_leaf  # no constant subexpressions in these
    x = torch.randn(8, 16)
    with CountOps() as counter:
        f(x)
    assert len(counter.ops) == non_leaf, counter.ops
    norm = PaperRuntimeNorm(root, 16)
    with torch.no_grad(), CountOps() as counter:
        norm(x)
    assert len(counter.ops) == non_leaf + 2  # then one mul by weight, one add of bias


def test_constant_subexpressions_are_folded():
    root = parse("2*3*x + 4")  # (2*3) is folded in Python; mul and add remain
    f = PaperRuntime(root)
    assert f.op_count == 2
    x = torch.tensor([1.0, -2.0])
    with CountOps() as counter:
        out = f(x)
    assert len(counter.ops) == 2
    assert out.tolist() == [10.0, -8.0]


def test_norm_applies_affine():
    root = parse(PAPER_TABLE4["blocks.3.norm1"])
    norm = PaperRuntimeNorm(root, 4)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, -1.0, 0.5]))
        norm.bias.copy_(torch.tensor([0.0, 1.0, 2.0, -3.0]))
        x = torch.randn(3, 4, dtype=torch.float64)
        y = norm.double()(x).numpy()
    ref = evaluate(root, x.numpy()) * np.array([1.0, 2.0, -1.0, 0.5]) + np.array([0.0, 1.0, 2.0, -3.0])
    np.testing.assert_allclose(y, ref, rtol=1e-13, atol=1e-13)


def test_lowered_ir_is_refused():
    x = var()
    with pytest.raises(ValueError, match="TANH_APPROX"):
        PaperRuntime(unary(Op.TANH_APPROX, x))


def test_built_in_table_matches_the_example_file():
    example = read_layers(str(EXAMPLE))
    built_in = paper_layer_set()
    assert list(example.layers) == list(built_in.layers)
    x = inputs()
    for name, layer in built_in.layers.items():
        assert_matches(evaluate(layer.ir, x), evaluate(example.layers[name].ir, x), 0.0)
