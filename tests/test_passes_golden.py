"""Golden tests: expression in, IR text out, for the rules of each pass; and the IR text form round trip."""

from __future__ import annotations

import pytest

from exprc import parse
from exprc.ir import Op, clip, parse_ir, print_ir, var
from exprc.passes.fuse_clip_tanh import fuse_clip_tanh
from exprc.passes.pipeline import optimize
from exprc.passes.simplify import simplify


def ir(text: str):
    return parse(text)


@pytest.mark.parametrize(
    "before, after",
    [
        pytest.param("x*1", "x", id="x*1"),
        pytest.param("x + 0", "x", id="x+0"),
        pytest.param("neg(neg(x))", "x", id="neg-neg"),
        pytest.param("2*(3*x)", "6*x", id="const-mul-assoc"),
        pytest.param("x*2", "2*x", id="const-left"),
        pytest.param("(x + 1) + 2", "x + 3", id="const-add-assoc"),
        pytest.param("x - 0.039", "x + -0.039", id="sub-const"),
        pytest.param("x/4", "0.25*x", id="div-pow2"),
        pytest.param("x**1", "x", id="pow1"),
        pytest.param("clip(clip(x, -3, 4), -5, 2)", "clip(x, -3, 2)", id="clip-clip"),
        pytest.param("0.5*clip(2*x)", "clip(1.0*x, -2.5, 2.5)", id="scale-into-clip"),
        pytest.param("-2*clip(x, -1, 3)", "clip(-2*x, -6, 2)", id="scale-into-clip-negative"),
        pytest.param("abs(neg(x))", "abs(x)", id="abs-neg"),
        pytest.param("tanh(x) + neg(tanh(x))", "tanh(x) - tanh(x)", id="add-neg"),
    ],
)
def test_simplify_rules(before: str, after: str) -> None:
    assert simplify(ir(before)) is simplify(ir(after)), print_ir(simplify(ir(before)))


@pytest.mark.parametrize(
    "before, after",
    [
        pytest.param("clip(tanh(x))", "tanh(x)", id="clip-of-tanh"),
        pytest.param("clip(0.471*clip(2.58*x))", "0.471*clip(2.58*x)", id="clip-fits"),
        pytest.param("tanh(clip(x, -20, 20))", "tanh(x)", id="tanh-saturates"),
        pytest.param("tanh(clip(x))", "tanh(clip(x))", id="tanh-clip-5-kept"),
    ],
)
def test_fuse_clip_tanh_rules(before: str, after: str) -> None:
    assert fuse_clip_tanh(ir(before)) is ir(after), print_ir(fuse_clip_tanh(ir(before)))


def test_one_sided_clip_has_infinite_bound() -> None:
    out = fuse_clip_tanh(ir("clip(-0.000308*x**2)"))
    assert out.op is Op.CLIP and out.arg == (-5.0, float("inf"))


def test_sigmoid_upper_bound_past_saturation_dropped() -> None:
    out = fuse_clip_tanh(ir("sigmoid(clip(x, -3, 30))"))
    assert out.op is Op.SIGMOID and out.src[0].arg == (-3.0, float("inf"))


def test_exp_sharing_computes_one_exp() -> None:
    res = optimize(ir("tanh(x) + tanh(x + 0.27)"), "horner")
    shared = res.after("share-exp")
    assert sum(n.op is Op.EXP for n in shared.toposort()) == 1
    assert sum(n.op is Op.EXP for n in res.after("simplify").toposort()) in (1, 2)


def test_cse_is_free() -> None:
    a = parse("tanh(x) + tanh(x)")
    assert a.src[0] is a.src[1]


def test_text_form_round_trips() -> None:
    for text in ["-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)",
                 "x*tanh(sigmoid(clip(-0.000308*x**2)))", "tanh(x)+tanh(x+0.27)"]:
        for mode in ("precise", "fast", "horner"):
            root = optimize(parse(text), mode).root
            assert parse_ir(print_ir(root)) is root


def test_text_form_golden() -> None:
    assert print_ir(clip(2.0 * var(), -5, 5)) == (
        "%0:f32 = const 2.0\n%1:f32 = input x\n%2:f32 = mul %0, %1\n%3:f32 = clip %2, -5.0, 5.0\nreturn %3")
