"""The cost model reproduces the paper's Table 4 and Appendix F figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exprc import parse
from exprc.cost import PAPER_FLOPS, dag_flops, dyt_flops, flops_optimized, flops_paper, layernorm_flops
from exprc.ir import Op

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "examples" / "vit_b16_paper.json"


def test_every_op_has_a_cost() -> None:
    assert set(PAPER_FLOPS) == set(Op)
    assert PAPER_FLOPS[Op.INSIDE] == PAPER_FLOPS[Op.SIGN] == PAPER_FLOPS[Op.CLIP] == 0  # compare and select


@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
def test_the_lowered_derivative_has_a_cost(mode: str) -> None:
    """dag_flops counts the lowered f' like any lowered IR; rules that reuse the forward value cost only what
    they add: tanh' = 1 - t*t is 2 more than tanh, sigmoid' = s*(1 - s) 3 more, exp' = e nothing more."""
    from exprc.passes.pipeline import optimize, optimize_derivative

    def flops(text: str) -> tuple[int, int]:
        forward = optimize(parse(text), mode)
        return dag_flops(forward.root), dag_flops(optimize_derivative(forward.optimized, mode).root)

    assert flops("0.698*clip(2.31*x)") == (1, 2)  # 1.61238*inside(1.61238*x, -3.49, 3.49)
    assert flops("abs(x)") == (0, 0) and flops("x**3") == (2, 2)  # sign(x); 3*(x*x)
    for text, more in [("tanh(x)", 2), ("sigmoid(x)", 3), ("exp(x)", 0)]:
        f, g = flops(text)
        assert g == f + more, (text, f, g)


@pytest.mark.parametrize("expr, flops", [
    ("-0.522*x + 2.11*clip(x)", 3), ("0.698*clip(2.31*x)", 2), ("tanh(x) + tanh(x + 0.27)", 48),
    ("(x + 0.0719)*(-0.307*x*tanh(2.99*x) + 2.46)", 29), ("x*tanh(sigmoid(clip(-0.000308*x**2)))", 48),
    ("clip(x*tanh(sigmoid(-0.0401*x*tanh(x))))", 71), ("neg(x) - 0.039", 1), ("x**3", 2), ("exp(x)", 19),
    ("tanh(x) + tanh(x)", 47),  # as written: both occurrences count
])
def test_flops_as_written(expr: str, flops: int) -> None:
    assert flops_paper(parse(expr)) == flops


def test_optimized_never_costs_more_and_shares_exp() -> None:
    assert flops_optimized(parse("tanh(x) + tanh(x + 0.27)")) < 48 - 19 + 1
    assert flops_optimized(parse("tanh(x) + tanh(x)")) == 24  # CSE: one tanh, one add
    assert flops_optimized(parse("0.698*clip(2.31*x)")) == 1


def test_paper_table4_per_layer_and_total() -> None:
    layers = json.loads(PAPER.read_text())["layers"]
    assert len(layers) == 25
    for name, spec in layers.items():
        assert flops_paper(parse(spec["expr"])) == spec["paper_flops"], name
        assert flops_optimized(parse(spec["expr"])) <= spec["paper_flops"], name
    assert sum(flops_paper(parse(s["expr"])) for s in layers.values()) == 474


def test_baselines() -> None:
    assert layernorm_flops(768) == 5 * 768 + 2 and dyt_flops(768) == 24 * 768


def test_cli_cost_json() -> None:
    out = subprocess.run([sys.executable, "-m", "exprc.cli", "cost", str(PAPER), "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert data["total_flops_paper"] == 474
    assert data["total_flops_optimized"] < 474
    assert all(isinstance(r["flops_paper"], int) and isinstance(r["flops_optimized"], int) for r in data["layers"])
    assert {"name", "expr", "flops_paper", "flops_optimized"} <= set(data["layers"][0])
    assert data["per_token"]["layernorm"] == 25 * (5 * 768 + 2)


def test_layer_cost_takes_only_the_expression() -> None:
    from exprc.cost import layer_cost

    ir = parse("0.698*clip(2.31*x)")
    assert layer_cost(ir) == {"flops_paper": 2, "flops_optimized": 1}
    with pytest.raises(TypeError):
        layer_cost(ir, ir)  # the optimized IR was once a second, ignored argument
