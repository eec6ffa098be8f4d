"""The element-wise kernel with every generated expression, run by Triton's interpreter on CPU, against the float64
numpy reference.

Every paper expression in every mode on random inputs and on 0, +-1e-30, +-1e30, +-3e38, +-inf and NaN: NaN in,
NaN out; no NaN from a finite input; where the float64 result overflows f32 the kernel gives the f32-rounded
value (inf); elsewhere |y - ref| <= tol * (1 + |ref|). Bounds: precise 1e-5 (the issue's), horner 1e-5 (measured
6.5e-6), fast 1e-5 under the interpreter, which runs `tanh_approx` as an accurate tanh (the hardware
`tanh.approx.f32` adds its own relative error of about 2**-11; only a GPU can measure it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exprc.compiler import compile_expr, expression_module
from exprc.frontend.layer_files import read_layers
from exprc.ir import evaluate
from exprc.runtime.expr_norm import eager_norm
from exprc.runtime.kernels import family_for

ROOT = Path(__file__).resolve().parents[1]
PAPER = read_layers(ROOT / "examples" / "vit_b16_paper.json")
D = 48  # not a power of two, and BLOCK is not a multiple of it
TOL = {"precise": 1e-5, "fast": 1e-5, "horner": 1e-5}
EDGE = [0.0, 1e-30, -1e-30, 1e30, -1e30, 3e38, -3e38, np.inf, -np.inf, np.nan]


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    parts = [EDGE, rng.normal(0.0, 3.0, 400), rng.uniform(-60.0, 60.0, 150), np.linspace(-12.0, 12.0, 400)]
    x = np.concatenate(parts).astype(np.float32)
    return x[: (x.size // D) * D].reshape(-1, D)


X = _inputs()
# the interpreter computes with numpy, which warns about the inf/NaN the edge inputs are there to produce
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def modules() -> dict[tuple[str, str], object]:
    """(mode, layer name) -> the generated expression module, imported for Triton's interpreter."""
    import triton.language  # noqa: F401  (imported outside the interpreter, see conftest.triton_interpret)

    return {(mode, layer.name): expression_module(compile_expr(layer.ir, mode), interpreted=True)
            for mode in TOL for layer in PAPER}


def apply(mod, x, w, b, out=None):
    return family_for("elementwise", mod).apply(mod, x, w, b, out=out)


def _round_to(values: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(dtype).double().numpy()


def assert_matches(y: np.ndarray, ref: np.ndarray, x: np.ndarray, tol: float, storage=torch.float32) -> float:
    """Check the kernel output `y` against the float64 reference `ref`; return the max scaled error."""
    expected = _round_to(ref, storage)  # what a correctly rounded kernel stores (inf where f32 overflows)
    assert np.array_equal(np.isnan(y), np.isnan(expected)), f"NaN mismatch at x={x[np.isnan(y) != np.isnan(expected)]}"
    assert not np.isnan(y[np.isfinite(x)]).any(), "NaN from a finite input"
    infinite = np.isinf(expected)
    assert np.array_equal(y[infinite], expected[infinite]), f"overflow mismatch at x={x[infinite]}"
    finite = np.isfinite(expected)
    err = np.abs(y[finite] - ref[finite]) / (1.0 + np.abs(ref[finite]))
    worst = float(err.max(initial=0.0))
    assert worst <= tol, f"error {worst:.3g} > {tol:g} at x={x[finite][err.argmax()]}"
    return worst


@pytest.mark.parametrize("mode", list(TOL))
@pytest.mark.parametrize("layer", list(PAPER), ids=lambda layer: layer.name)
def test_paper_expression_f32(modules, layer, mode) -> None:
    y = apply(modules[mode, layer.name], torch.from_numpy(X), torch.ones(D), torch.zeros(D))
    assert y.dtype == torch.float32 and y.shape == X.shape
    assert_matches(y.double().numpy(), evaluate(layer.ir, X.astype(np.float64)), X, TOL[mode])


@pytest.mark.parametrize("storage", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("layer", list(PAPER), ids=lambda layer: layer.name)
def test_paper_expression_half_storage(modules, layer, storage) -> None:
    """Half storage: the reference of the rounded input, rounded to the storage type, within 2 of its ulps."""
    x = torch.from_numpy(X).to(storage)
    y = apply(modules["precise", layer.name], x, torch.ones(D, dtype=storage), torch.zeros(D, dtype=storage))
    assert y.dtype == storage
    xr = x.double().numpy()
    ref = evaluate(layer.ir, xr)
    expected = _round_to(ref, storage)
    eps = torch.finfo(storage).eps
    yd = y.double().numpy()
    assert np.array_equal(np.isnan(yd), np.isnan(expected))
    infinite, finite = np.isinf(expected), np.isfinite(expected)
    assert np.array_equal(yd[infinite], expected[infinite])
    assert np.all(np.abs(yd[finite] - expected[finite]) <= 2 * eps * (1e-3 + np.abs(expected[finite])))


def test_affine_and_shapes(modules) -> None:
    """y = f(x) * w + b over the last dim, for 3-D, non-contiguous, `out=` and empty inputs; several programs
    along rows and columns, the last one's rows masked (903 rows: not a multiple of BLOCK_M)."""
    layer = PAPER.layers["blocks.5.norm1"] if "blocks.5.norm1" in PAPER.layers else next(iter(PAPER))
    mod = modules["precise", layer.name]
    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.normal(size=D).astype(np.float32))
    b = torch.from_numpy(rng.normal(size=D).astype(np.float32))
    x = torch.from_numpy(rng.normal(0, 3, (3, 301, D)).astype(np.float32))
    f = evaluate(layer.ir, x.double().numpy())
    ref = f * w.double().numpy() + b.double().numpy()
    y = apply(mod, x, w, b)
    block_m, block_d, _ = family_for("elementwise", mod).launch_config(903, D, 4)
    assert y.shape == x.shape and block_m > 1 and 903 % block_m and D // block_d > 1
    assert np.all(np.abs(y.double().numpy() - ref) <= 1e-5 * (1 + np.abs(f)) * (1 + np.abs(w.double().numpy())))
    xt = x.transpose(0, 1)  # non-contiguous: same values, other layout
    assert torch.equal(apply(mod, xt, w, b), y.transpose(0, 1))
    out = torch.empty(301, 3, D).transpose(0, 1)  # a non-contiguous out= is filled too
    assert apply(mod, x, w, b, out=out) is out and torch.equal(out, y)
    assert apply(mod, x[:0], w, b).shape == (0, 301, D)
    assert torch.allclose(eager_norm(mod, x, w, b), y, rtol=1e-5, atol=1e-5)


def test_apply_rejects_bad_arguments(modules) -> None:
    mod = modules["precise", next(iter(PAPER)).name]
    x = torch.zeros(2, D)
    with pytest.raises(ValueError, match="last dimensions"):
        apply(mod, x, torch.ones(D + 1), torch.zeros(D + 1))
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        apply(mod, x.double(), torch.ones(D), torch.zeros(D))
