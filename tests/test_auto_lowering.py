"""`auto` mode: the stated error bounds hold (each lowering evaluated in f32 against float64, over every bf16 input
and a dense grid, stays within the bound the proof assumes), the proof refuses what it cannot show, the choice per
paper layer and storage dtype, the generated module and the runtime picking its storage's function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exprc.compiler import compile_expr, expression_module
from exprc.frontend.layer_files import read_layers
from exprc.ir import evaluate
from exprc.passes.auto_lowering import choose, cost
from exprc.passes.error_bounds import BUDGET, LOWERING_ERRORS, error_bound, prove, storage_inputs
from exprc.runtime.kernels.support import for_storage

ROOT = Path(__file__).resolve().parents[1]
PAPER = read_layers(ROOT / "examples" / "vit_b16_paper.json")
DEEP = "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)"
GRID = np.concatenate([storage_inputs("bfloat16"), np.linspace(-30, 30, 600001)]).astype(np.float32)
GRID = GRID[np.abs(GRID) < 1e30]
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("text", ["tanh(x)", "sigmoid(x)", "exp(x)", "tanh(tanh(x) + 0.3)", "x*sigmoid(2*x)"])
def test_horner_error_within_its_stated_bound(text) -> None:
    """horner's bounds are measured ones: its lowered IR evaluated in f32 stays within the propagated bound."""
    c = compile_expr(text, "horner")
    x = GRID.astype(np.float64)
    y = evaluate(c.root, GRID, np.float32).astype(np.float64)
    f, bound, counts = error_bound(c.result.optimized, "horner", x)
    ok = counts & np.isfinite(f)
    assert np.all(np.abs(y[ok] - f[ok]) <= bound[ok]), x[ok][np.argmax(np.abs(y[ok] - f[ok]) - bound[ok])]


def test_every_lowering_states_its_bound_and_source() -> None:
    for mode, table in LOWERING_ERRORS.items():
        assert set(table) == set(LOWERING_ERRORS["precise"]), mode
        for op, err in table.items():
            assert (err.rel or err.abs) and err.source, (mode, op)


def test_budget_is_half_the_rounding_unit() -> None:
    assert BUDGET == {"float32": 2.0**-25, "bfloat16": 2.0**-9, "float16": 2.0**-12}


def test_division_by_a_fast_tanh_near_zero_is_refused() -> None:
    """fast's tanh error is absolute (2^-11): dividing by tanh near its zero amplifies it; the proof says so."""
    root = compile_expr("x/(tanh(x) + 0.001)", "precise").result.optimized
    proof = prove(root, "fast", "bfloat16")
    assert not proof.ok and abs(proof.worst_x) < 0.1
    assert choose(root).mode("bfloat16") == "precise"
    small = compile_expr("0.01*tanh(x)", "precise").result.optimized  # a small coefficient: provable in f16 too
    assert choose(small).modes() == {"float32": "precise", "bfloat16": "fast", "float16": "fast"}


def test_proof_covers_every_finite_input() -> None:
    assert storage_inputs("bfloat16").size == 65536 - 2 * 128  # less the NaNs and +-inf (exponent all ones)
    assert storage_inputs("float16").size == 63488
    proof = prove(compile_expr("tanh(x)", "precise").result.optimized, "fast", "bfloat16")
    assert proof.ok and proof.inputs == 65280


EXPECTED_BF16 = {"blocks.4.norm1": "precise", "blocks.11.norm2": "precise", "norm": "precise"}


@pytest.mark.parametrize("layer", list(PAPER), ids=lambda layer: layer.name)
def test_auto_choice_per_paper_layer(layer) -> None:
    c = compile_expr(layer.ir, "auto")
    modes = c.auto.modes()
    assert modes["float32"] == "precise" and modes["float16"] == "precise"
    root = c.result.optimized
    if cost(root, "fast") == cost(root, "precise"):  # nothing to lower: the same code in every mode
        assert modes["bfloat16"] == "precise" and c.storage_roots == ()
        return
    assert modes["bfloat16"] == EXPECTED_BF16.get(layer.name, "fast")
    for storage, choice in c.auto.choices.items():
        assert choice.reason and all(p.storage == storage for p in choice.proofs)
    assert ("expr_fn_bf16" in c.source()) == (modes["bfloat16"] != "precise")


def test_generated_module_and_runtime_pick_the_storage_function(triton_interpret) -> None:
    c = compile_expr("0.01*tanh(x)", "auto")
    assert "expr_fn_f16 = expr_fn_bf16" in c.source() and "(bf16: fast, f16: fast)" in c.source()
    module = expression_module(c, interpreted=True)
    assert for_storage(module, "bfloat16").expr_fn is module.expr_fn_bf16
    assert for_storage(module, "float16").expr_fn is module.expr_fn_bf16
    assert for_storage(module, "float32") is module
    from exprc import ExprNorm

    norm = ExprNorm(16, DEEP)  # the default mode is auto
    assert norm.mode == "auto"
    x = torch.linspace(-4, 4, 64).reshape(4, 16)
    for dtype in (torch.float32, torch.bfloat16):
        with torch.no_grad():
            y = norm(x.to(dtype))
        ref = evaluate(compile_expr(DEEP, "precise").result.optimized, x.to(dtype).double().numpy())
        assert y.dtype == dtype
        assert np.abs(y.double().numpy() - ref).max() <= 2 * torch.finfo(dtype).eps * (1 + np.abs(ref).max())


def test_explain_prints_the_choice_and_why(capsys) -> None:
    from exprc.cli import main

    assert main(["explain", str(ROOT / "examples" / "vit_b16_paper.json"), "--layer", "blocks.4.norm1",
                 "--layer", "blocks.2.norm1", "--no-code", "--print-after", "fold-constants"]) == 0
    out = capsys.readouterr().out
    assert "stated error bound of each lowering" in out and "fast tanh: 0.000493 absolute" in out
    assert "bfloat16: fast: the cheapest proven lowering" in out
    assert "bfloat16: precise: no cheaper lowering proven: fast: error bound 4.85 x the bfloat16 budget" in out
