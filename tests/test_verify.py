"""The verifier rejects invalid IR (with an ExprcError naming the op and what is wrong) and accepts what the
passes produce."""

from __future__ import annotations

import math

import pytest

from exprc.errors import ExprcError
from exprc.ir import BOOL, F32, I32, MAX_POW, Node, Op, clip, const, unary, var, verify
from exprc.passes.pipeline import MODES, optimize, optimize_derivative

X = var()
K = const(3, I32)


def _rejects(root, *words: str) -> None:
    with pytest.raises(ExprcError) as info:
        verify(root)
    for w in words:
        assert w in info.value.message, info.value.message


@pytest.mark.parametrize("mode", MODES)
def test_accepts_every_lowered_form(mode: str) -> None:
    from exprc import parse

    root = parse("x*tanh(sigmoid(clip(-0.0401*x**2))) + exp(tanh(x) + 0.27) + abs(x)/3 - neg(x)")
    forward = optimize(root, mode)
    for stage in forward.stages + optimize_derivative(forward.optimized, mode).stages:  # the derivative's too
        assert verify(stage.root) is stage.root


def test_accepts_i32_arithmetic_and_bool_constants() -> None:
    bits = Node(Op.SHL, I32, (Node(Op.ADD, I32, (Node(Op.CAST, I32, (X,)), K)),), 23)
    verify(Node(Op.BITCAST, F32, (bits,)) + Node(Op.CAST, F32, (K * K,)))
    verify(const(True, BOOL))


# -- types ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("node, words", [
    pytest.param(Node(Op.ADD, F32, (X, K)), ("add", "f32, i32 -> f32"), id="f32-add-of-i32"),
    pytest.param(Node(Op.MUL, I32, (X, X)), ("mul", "f32, f32 -> i32"), id="i32-mul-of-f32"),
    pytest.param(Node(Op.SUB, BOOL, (const(True, BOOL), const(False, BOOL))), ("sub",), id="bool-arithmetic"),
    pytest.param(Node(Op.DIV, I32, (K, K)), ("div",), id="i32-div"),
    pytest.param(Node(Op.BITCAST, F32, (X,)), ("bitcast", "f32 -> f32"), id="bitcast-from-f32"),
    pytest.param(Node(Op.BITCAST, I32, (K,)), ("bitcast",), id="bitcast-to-i32"),
    pytest.param(Node(Op.CAST, F32, (X,)), ("cast",), id="cast-f32-to-f32"),
    pytest.param(Node(Op.TANH, F32, (K,)), ("tanh", "i32 -> f32"), id="tanh-of-i32"),
    pytest.param(Node(Op.CLIP, I32, (K,), (0.0, 1.0)), ("clip",), id="i32-clip"),
    pytest.param(Node(Op.INSIDE, I32, (X,), (0.0, 1.0)), ("inside", "f32 -> i32"), id="i32-inside"),
    pytest.param(Node(Op.SIGN, F32, (K,)), ("sign", "i32 -> f32"), id="sign-of-i32"),
    pytest.param(Node(Op.SHL, I32, (X,), 23), ("shl",), id="shl-of-f32"),
    pytest.param(Node(Op.INPUT, I32, (), "x"), ("input",), id="i32-input"),
])
def test_rejects_wrong_dtype(node: Node, words: tuple[str, ...]) -> None:
    _rejects(node, "invalid IR", *words)


def test_rejects_a_bad_node_deep_in_the_graph() -> None:
    bad = Node(Op.ADD, F32, (X, K))
    _rejects(unary(Op.TANH, unary(Op.TANH, bad) * 2.0) + X, "invalid IR at add")


# -- clip bounds ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arg", [
    pytest.param((2.0, 1.0), id="lo>hi"),
    pytest.param((math.nan, 1.0), id="nan-lo"),
    pytest.param((-1.0, math.nan), id="nan-hi"),
    pytest.param(None, id="missing"),
    pytest.param((1.0,), id="one-bound"),
    pytest.param((-1.0, 1.0, 2.0), id="three-bounds"),
    pytest.param(("-1", "1"), id="strings"),
    pytest.param((False, True), id="bools"),
])
def test_rejects_bad_clip_bounds(arg) -> None:
    _rejects(Node(Op.CLIP, F32, (X,), arg), "invalid IR at clip", "clip bounds")
    _rejects(Node(Op.INSIDE, F32, (X,), arg), "invalid IR at inside", "inside bounds")  # clip's derivative


@pytest.mark.parametrize("lo, hi", [(-5.0, 5.0), (1.0, 1.0), (-math.inf, 2.0), (-math.inf, math.inf), (-1, 3)])
def test_accepts_clip_bounds(lo: float, hi: float) -> None:
    verify(Node(Op.CLIP, F32, (X,), (lo, hi)))
    verify(Node(Op.INSIDE, F32, (X,), (lo, hi)))


# -- sources --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("src, words", [
    pytest.param((1.0,), ("operand 0 is 1.0", "not an IR node"), id="float-operand"),
    pytest.param((X, None), ("operand 1 is None",), id="none-operand"),
    pytest.param(("x",), ("operand 0 is 'x'",), id="string-operand"),
])
def test_rejects_a_source_that_is_not_a_node(src, words) -> None:
    op = Op.ADD if len(src) == 2 else Op.NEG
    _rejects(Node(op, F32, src), *words)
    _rejects(unary(Op.TANH, Node(op, F32, src)), *words)  # below the root too


@pytest.mark.parametrize("node, words", [
    pytest.param(Node(Op.ADD, F32, (X,)), ("add", "expected 2 operands, got 1"), id="add-of-one"),
    pytest.param(Node(Op.NEG, F32, (X, X)), ("neg", "expected 1 operands, got 2"), id="neg-of-two"),
    pytest.param(Node(Op.TANH, F32, ()), ("tanh", "expected 1 operands, got 0"), id="tanh-of-none"),
    pytest.param(Node(Op.CONST, F32, (X,), 1.0), ("const", "expected 0 operands, got 1"), id="const-with-source"),
])
def test_rejects_wrong_arity(node: Node, words: tuple[str, ...]) -> None:
    _rejects(node, *words)


def test_rejects_a_root_that_is_not_a_node() -> None:
    _rejects(1.0, "root is 1.0")


# -- constants and args ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("node", [
    pytest.param(Node(Op.CONST, F32, (), math.nan), id="nan-f32"),
    pytest.param(Node(Op.CONST, F32, (), 1), id="int-as-f32"),
    pytest.param(Node(Op.CONST, F32, (), True), id="bool-as-f32"),
    pytest.param(Node(Op.CONST, I32, (), 1.5), id="float-as-i32"),
    pytest.param(Node(Op.CONST, I32, (), True), id="bool-as-i32"),
    pytest.param(Node(Op.CONST, BOOL, (), 1), id="int-as-bool"),
])
def test_rejects_a_constant_that_does_not_fit_its_type(node: Node) -> None:
    _rejects(node + X if node.dtype is F32 else node, "invalid IR at const", "does not fit")


def test_accepts_infinite_constants() -> None:
    verify(const(math.inf) * X + const(-math.inf))


@pytest.mark.parametrize("n", [-1, MAX_POW + 1, 100, 2.0, True, None])
def test_rejects_a_pow_exponent_out_of_range(n) -> None:
    _rejects(Node(Op.POW, F32, (X,), n), "invalid IR at pow", f"0..{MAX_POW}")


@pytest.mark.parametrize("n", [0, 1, MAX_POW])
def test_accepts_pow_exponents_in_range(n: int) -> None:
    verify(Node(Op.POW, F32, (X,), n))


@pytest.mark.parametrize("node, words", [
    pytest.param(Node(Op.SHL, I32, (K,), 32), ("shl", "0..31"), id="shl-32"),
    pytest.param(Node(Op.SHL, I32, (K,), -1), ("shl", "0..31"), id="shl-negative"),
    pytest.param(Node(Op.INPUT, F32, (), "y"), ("input", "only input is x"), id="input-y"),
    pytest.param(Node(Op.TANH, F32, (X,), 3), ("tanh", "takes no argument, got 3"), id="arg-on-tanh"),
    pytest.param(Node(Op.SIGN, F32, (X,), 0.0), ("sign", "takes no argument, got 0.0"), id="arg-on-sign"),
    pytest.param(Node(Op.ADD, F32, (X, X), (1.0, 2.0)), ("add", "takes no argument"), id="arg-on-add"),
])
def test_rejects_bad_args(node: Node, words: tuple[str, ...]) -> None:
    _rejects(node, *words)


def test_clip_builder_does_not_check_but_verify_does() -> None:
    _rejects(clip(X, 3.0, -3.0), "lo <= hi")
