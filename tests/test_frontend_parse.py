"""Expression text -> IR: golden IR text for the forms GP tools write, and values against hand-written numpy."""

from __future__ import annotations

import numpy as np
import pytest

from exprc import ExprcError, parse
from exprc.ir import Op, evaluate, parse_ir, print_ir

GOLDEN = [
    pytest.param(
        "-0.522*x + 2.11*clip(x)",
        """
        %0:f32 = const -0.522
        %1:f32 = input x
        %2:f32 = mul %0, %1
        %3:f32 = const 2.11
        %4:f32 = clip %1, -5.0, 5.0
        %5:f32 = mul %3, %4
        %6:f32 = add %2, %5
        return %6
        """,
        id="paper-table4-python-syntax",
    ),
    pytest.param(
        "((((-0.14215629)*(x))+(clip((x)*(2.3018188))))*(0.69904095))",
        """
        %0:f32 = const -0.14215629
        %1:f32 = input x
        %2:f32 = mul %0, %1
        %3:f32 = const 2.3018188
        %4:f32 = mul %1, %3
        %5:f32 = clip %4, -5.0, 5.0
        %6:f32 = add %2, %5
        %7:f32 = const 0.69904095
        %8:f32 = mul %6, %7
        return %8
        """,
        id="kozax-raw-tree",
    ),
    pytest.param(
        "neg(neg(-0.549*x + clip(2.67*x))) + 0.161",
        """
        %0:f32 = const -0.549
        %1:f32 = input x
        %2:f32 = mul %0, %1
        %3:f32 = const 2.67
        %4:f32 = mul %3, %1
        %5:f32 = clip %4, -5.0, 5.0
        %6:f32 = add %2, %5
        %7:f32 = neg %6
        %8:f32 = neg %7
        %9:f32 = const 0.161
        %10:f32 = add %8, %9
        return %10
        """,
        id="sympy-neg-neg",
    ),
    pytest.param(
        "x*tanh(sigmoid(clip(-0.000308*x**2)))",
        """
        %0:f32 = input x
        %1:f32 = const -0.000308
        %2:f32 = pow %0, 2
        %3:f32 = mul %1, %2
        %4:f32 = clip %3, -5.0, 5.0
        %5:f32 = sigmoid %4
        %6:f32 = tanh %5
        %7:f32 = mul %0, %6
        return %7
        """,
        id="sympy-power",
    ),
    pytest.param(
        "x0 - 0.039",
        """
        %0:f32 = input x
        %1:f32 = const 0.039
        %2:f32 = sub %0, %1
        return %2
        """,
        id="x0-minus-constant",
    ),
    pytest.param(
        "3.08e-6*x",
        """
        %0:f32 = const 3.08e-06
        %1:f32 = input x
        %2:f32 = mul %0, %1
        return %2
        """,
        id="scientific-constant",
    ),
    pytest.param(
        "σ(x)/2",
        """
        %0:f32 = input x
        %1:f32 = sigmoid %0
        %2:f32 = const 2.0
        %3:f32 = div %1, %2
        return %3
        """,
        id="unicode-sigma",
    ),
    pytest.param(
        "clip(x, -1, 2*0.5)",
        """
        %0:f32 = input x
        %1:f32 = clip %0, -1.0, 1.0
        return %1
        """,
        id="clip-with-bounds",
    ),
    pytest.param(
        "tanh(x) + tanh(x + 0.27)",
        """
        %0:f32 = input x
        %1:f32 = tanh %0
        %2:f32 = const 0.27
        %3:f32 = add %0, %2
        %4:f32 = tanh %3
        %5:f32 = add %1, %4
        return %5
        """,
        id="shared-input",
    ),
]


def _dedent(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


@pytest.mark.parametrize("text, expected", GOLDEN)
def test_golden_ir(text, expected):
    root = parse(text)
    assert print_ir(root) == _dedent(expected)
    assert parse_ir(print_ir(root)) is root  # the text form reads back to the identical node


@pytest.mark.parametrize(
    "a, b",
    [
        ("x0", "x"),
        ("sigm(x)", "sigmoid(x)"),
        ("sig(x)", "sigmoid(x)"),
        ("σ(x)", "sigmoid(x)"),
        ("Abs(x)", "abs(x)"),
        ("  x + 1  ", "x + 1"),
        ("x+1", "((x)+(1.0))"),
        ("1.23e+3*x", "1230*x"),
        ("x**2.0", "x**2"),
        ("(x + 1)**(-1)", "1/(x + 1)"),
        ("(x + 1)**-2.0", "1/(x + 1)**2"),
        ("+x", "x"),
        ("-(2.5)*x", "-2.5*x"),
        ("clip(x)", "clip(x, -5, 5)"),
        ("x + x + x + x", "((x + x) + x) + x"),
    ],
)
def test_spellings_build_the_same_ir(a, b):
    assert parse(a) is parse(b)


def test_clip_bounds_from_the_layer_file():
    root = parse("clip(2*x)", clip_bounds=(-3.0, 4.0))
    assert root.op is Op.CLIP and root.arg == (-3.0, 4.0)
    assert parse("clip(x, -1, 1)", clip_bounds=(-3.0, 4.0)).arg == (-1.0, 1.0)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


NUMERIC = [
    ("-0.522*x + 2.11*clip(x)", lambda x: -0.522 * x + 2.11 * np.clip(x, -5, 5)),
    ("-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)",
     lambda x: -0.84 * x + 1.31 * np.clip(2 * x, -5, 5) + 0.548 * np.tanh(np.tanh(np.tanh(x)) + 0.227)),
    ("(x + 0.0719)*(-0.307*x*tanh(2.99*x) + 2.46)", lambda x: (x + 0.0719) * (-0.307 * x * np.tanh(2.99 * x) + 2.46)),
    ("x*tanh(sigmoid(clip(-0.000308*x**2)))", lambda x: x * np.tanh(_sigmoid(np.clip(-0.000308 * x * x, -5, 5)))),
    ("clip(x*tanh(σ(-0.0401*x*tanh(x))))", lambda x: np.clip(x * np.tanh(_sigmoid(-0.0401 * x * np.tanh(x))), -5, 5)),
    ("neg(neg(-0.549*x + clip(2.67*x))) + 0.161", lambda x: -0.549 * x + np.clip(2.67 * x, -5, 5) + 0.161),
    ("((((-0.14215629)*(x))+(clip((x)*(2.3018188))))*(0.69904095))",
     lambda x: (-0.14215629 * x + np.clip(2.3018188 * x, -5, 5)) * 0.69904095),
    ("abs(x0)/2 - exp(-x)", lambda x: np.abs(x) / 2 - np.exp(-x)),
    ("x**3 - 1.5e-1*x", lambda x: x**3 - 0.15 * x),
    ("0.5*(x**2 + 1)**(-2) + x", lambda x: 0.5 / (x * x + 1) ** 2 + x),  # sympy's printing of 1/(x**2 + 1)**2
]


@pytest.mark.parametrize("text, reference", NUMERIC, ids=[t for t, _ in NUMERIC])
def test_values_match_numpy(text, reference):
    x = np.concatenate([np.linspace(-8, 8, 161), [0.0, -0.0, 1e-30, -1e-30, 4.999, 5.001, -5.001]])
    got = evaluate(parse(text), x)
    np.testing.assert_allclose(got, reference(x), rtol=1e-13, atol=1e-15)


def test_values_would_catch_a_wrong_constant():
    x = np.linspace(-3, 3, 13)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(evaluate(parse("-0.522*x + 2.11*clip(x)"), x), -0.52 * x + 2.11 * x, rtol=1e-9)


def test_parsing_twice_gives_the_same_node():
    text = "-0.687*x + clip(1.99*x) + clip(clip(tanh(x)) + 0.154)"
    assert parse(text) is parse(text)


def test_long_flat_sum_is_not_deep():
    root = parse(" + ".join(["x"] * 1000))  # left-nested 1000 deep in the syntax tree, flat to a reader
    assert float(evaluate(root, 2.0)) == 2000.0


def test_errors_are_exprc_errors_with_a_caret():
    with pytest.raises(ExprcError) as info:
        parse("tanh(x) + foo(x)")
    err = info.value
    assert "foo" in str(err)
    assert err.pretty().splitlines()[-1].strip() == "^^^"
