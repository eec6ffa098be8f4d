"""Property tests: random expression trees printed as text, parsed back, evaluate like an independent numpy
evaluation of the same tree; and the IR text form round-trips."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exprc import parse
from exprc.ir import evaluate, parse_ir, print_ir

X = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.25, 3.0, 7.5, -40.0, 1e-30, -1e-30, 1e3, 1e30, -3e38,
              np.inf, -np.inf, np.nan])


def _sigmoid(a):
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(a))
        return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# each strategy gives (text, f) where f evaluates the same tree on a float64 array
_constants = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False).map(
    lambda c: (f"({c!r})" if c < 0 or repr(c).startswith("-") else repr(c), lambda x, c=c: np.full_like(x, c)))
_variables = st.sampled_from(["x", "x0"]).map(lambda name: (name, lambda x: x))
_leaves = st.one_of(_variables, _constants)

_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_UNARY = {
    "tanh": np.tanh, "sigmoid": _sigmoid, "sigm": _sigmoid, "σ": _sigmoid, "neg": np.negative, "abs": np.abs,
    "Abs": np.abs, "exp": np.exp, "clip": lambda a: np.clip(a, -5.0, 5.0),
}


def _binary(children):
    return st.tuples(st.sampled_from(sorted(_BINARY)), children, children, st.sampled_from(["", " "])).map(
        lambda t: (f"({t[1][0]}){t[3]}{t[0]}{t[3]}({t[2][0]})",
                   lambda x, t=t: _BINARY[t[0]](t[1][1](x), t[2][1](x))))


def _call(children):
    return st.tuples(st.sampled_from(sorted(_UNARY)), children).map(
        lambda t: (f"{t[0]}({t[1][0]})", lambda x, t=t: _UNARY[t[0]](t[1][1](x))))


def _clip3(children):
    bounds = st.tuples(st.floats(-10, 0, allow_nan=False), st.floats(0, 10, allow_nan=False))
    return st.tuples(children, bounds).map(
        lambda t: (f"clip({t[0][0]}, {t[1][0]!r}, {t[1][1]!r})",
                   lambda x, t=t: np.clip(t[0][1](x), t[1][0], t[1][1])))


def _power(children):
    return st.tuples(children, st.integers(0, 4)).map(
        lambda t: (f"({t[0][0]})**{t[1]}", lambda x, t=t: t[0][1](x) ** t[1]))


def _negate(children):
    return children.map(lambda c: (f"-({c[0]})", lambda x, c=c: -c[1](x)))


expressions = st.recursive(
    _leaves,
    lambda children: st.one_of(_binary(children), _call(children), _clip3(children), _power(children),
                               _negate(children)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_printed_trees_parse_back_to_the_same_values(case):
    text, reference = case
    with np.errstate(all="ignore"):
        want = reference(X.copy())
    got = evaluate(parse(text), X.copy())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300, equal_nan=True, err_msg=text)


@settings(max_examples=200, deadline=None)
@given(expressions)
def test_ir_text_round_trips(case):
    root = parse(case[0])
    assert parse_ir(print_ir(root)) is root
