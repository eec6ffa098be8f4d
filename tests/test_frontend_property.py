"""Property tests: random expression trees printed as text, parsed back, evaluate like an independent numpy
evaluation of the same tree; the IR text form round-trips; a division by a constant zero is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprc import ExprcError, parse
from exprc.ir import evaluate, parse_ir, print_ir

X = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.25, 3.0, 7.5, -40.0, 1e-30, -1e-30, 1e3, 1e30, -3e38,
              np.inf, -np.inf, np.nan])


def _sigmoid(a):
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(a))
        return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# each strategy gives (text, f, constant) where f evaluates the same tree on a float64 array and `constant` says
# that the tree has no variable in it
_constants = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False).map(
    lambda c: (f"({c!r})" if c < 0 or repr(c).startswith("-") else repr(c), lambda x, c=c: np.full_like(x, c), True))
_variables = st.sampled_from(["x", "x0"]).map(lambda name: (name, lambda x: x, False))
_leaves = st.one_of(_variables, _constants)

_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_UNARY = {
    "tanh": np.tanh, "sigmoid": _sigmoid, "sigm": _sigmoid, "σ": _sigmoid, "neg": np.negative, "abs": np.abs,
    "Abs": np.abs, "exp": np.exp, "clip": lambda a: np.clip(a, -5.0, 5.0),
}


def _constant_zero(case) -> bool:
    """A tree without variables whose value is 0 (or -0) or rounds to 0 in float32 (|v| <= 2**-150), computed in
    float64 as constant folding does: a divisor the parser refuses."""
    with np.errstate(all="ignore"):
        return case[2] and abs(case[1](np.zeros(1))[0]) <= 2.0 ** -150


def _binary(children):
    return st.tuples(st.sampled_from(sorted(_BINARY)), children, children, st.sampled_from(["", " "])).map(
        _not_by_zero).map(
        lambda t: (f"({t[1][0]}){t[3]}{t[0]}{t[3]}({t[2][0]})",
                   lambda x, t=t: _BINARY[t[0]](t[1][1](x), t[2][1](x)), t[1][2] and t[2][2]))


def _not_by_zero(t):
    """A division by a constant zero is refused (test_division_by_a_constant_zero): make it an addition."""
    return ("+", *t[1:]) if t[0] == "/" and _constant_zero(t[2]) else t


def _call(children):
    return st.tuples(st.sampled_from(sorted(_UNARY)), children).map(
        lambda t: (f"{t[0]}({t[1][0]})", lambda x, t=t: _UNARY[t[0]](t[1][1](x)), t[1][2]))


def _clip3(children):
    bounds = st.tuples(st.floats(-10, 0, allow_nan=False), st.floats(0, 10, allow_nan=False))
    return st.tuples(children, bounds).map(
        lambda t: (f"clip({t[0][0]}, {t[1][0]!r}, {t[1][1]!r})",
                   lambda x, t=t: np.clip(t[0][1](x), t[1][0], t[1][1]), t[0][2]))


def _power(children):
    """`(a)**n` for n in -4..4 (negative: 1/a**-n, as sympy prints it); a constant zero base gets n >= 0."""
    return st.tuples(children, st.integers(-4, 4)).map(
        lambda t: (t[0], -t[1]) if t[1] < 0 and _constant_zero(t[0]) else t).map(
        lambda t: (f"({t[0][0]})**({t[1]})", lambda x, t=t: _pow(t[0][1](x), t[1]), t[0][2]))


def _pow(a, n: int):
    with np.errstate(all="ignore"):
        return a ** n if n >= 0 else 1.0 / a ** -n


def _negate(children):
    return children.map(lambda c: (f"-({c[0]})", lambda x, c=c: -c[1](x), c[2]))


def _trees(leaves, max_leaves):
    return st.recursive(leaves, lambda children: st.one_of(_binary(children), _call(children), _clip3(children),
                                                           _power(children), _negate(children)),
                        max_leaves=max_leaves)


expressions = _trees(_leaves, 12)
constant_expressions = _trees(_constants, 6)


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_printed_trees_parse_back_to_the_same_values(case):
    text, reference, _ = case
    with np.errstate(all="ignore"):
        want = reference(X.copy())
    got = evaluate(parse(text), X.copy())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300, equal_nan=True, err_msg=text)


@settings(max_examples=200, deadline=None)
@given(expressions)
def test_ir_text_round_trips(case):
    root = parse(case[0])
    assert parse_ir(print_ir(root)) is root


@settings(max_examples=100, deadline=None)
@given(expressions, constant_expressions)
def test_division_by_a_constant_zero(case, constant):
    """e / (c - c) with c a finite constant tree: refused, with the caret under a divisor (this one or one in c)."""
    with np.errstate(all="ignore"):
        finite = bool(np.isfinite(constant[1](np.zeros(1))[0]))
    text = f"({case[0]}) / (({constant[0]}) - ({constant[0]}))"
    if not finite:  # inf - inf is NaN, not 0: an ordinary (if useless) expression
        parse(text)
        return
    with pytest.raises(ExprcError, match="division by zero") as info:
        parse(text)
    span = info.value.span
    assert span.start >= len(f"({case[0]}) / ") and "^" in info.value.pretty()
