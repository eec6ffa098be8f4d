"""Golden tests of the derivative pass, IR text in, IR text out (as `test_passes_golden.py`): each case runs the
derivative pass alone on the forward IR and compares the printed, unsimplified f'. Every rule of the gradient table
fires in some case (a new rule without a case fails). Then the pipeline around it: which IR it starts from, the
passes after it, the forward values it shares, and the errors for IR it cannot differentiate."""

from __future__ import annotations

import pytest

from exprc import ExprcError, parse
from exprc.cost import dag_flops
from exprc.ir import F32, I32, Node, Op, const, parse_ir, print_ir, var, verify
from exprc.passes.derivative import GRADIENTS, Derivative, derivative
from exprc.passes.pipeline import MODES, PassContext, derivative_pipeline, optimize, optimize_derivative, pipeline
from exprc.passes.rewrite import Fired


def lines(text: str) -> str:
    return "\n".join(part.strip() for part in text.split(";"))


def run(text: str) -> tuple[Node, list[Fired]]:
    trace: list[Fired] = []
    return verify(Derivative().run(verify(parse_ir(lines(text))), PassContext("precise", trace))), trace


def case(id: str, before: str, after: str):
    return pytest.param(before, after, id=id)


CASES = [
    case("d(x+c)=1: constants get no gradient",
         "%0:f32 = input x; %1:f32 = const 2.0; %2:f32 = add %0, %1; return %2",
         "%0:f32 = const 1.0; return %0"),
    case("d(c-x)=-1",
         "%0:f32 = const 3.0; %1:f32 = input x; %2:f32 = sub %0, %1; return %2",
         "%0:f32 = const 1.0; %1:f32 = neg %0; return %1"),
    case("d(x*x)=g*x+g*x: both sources accumulate",
         "%0:f32 = input x; %1:f32 = mul %0, %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = add %2, %2; return %3"),
    case("d(c/x)=-(g*q)/x with q the forward c/x",
         "%0:f32 = const 3.0; %1:f32 = input x; %2:f32 = div %0, %1; return %2",
         "%0:f32 = const 1.0; %1:f32 = const 3.0; %2:f32 = input x; %3:f32 = div %1, %2; %4:f32 = mul %0, %3; "
         "%5:f32 = neg %4; %6:f32 = div %5, %2; return %6"),
    case("d(x/tanh(x)): numerator and denominator",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = div %0, %1; return %2",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = tanh %1; %3:f32 = div %0, %2; %4:f32 = div %1, %2; "
         "%5:f32 = mul %0, %4; %6:f32 = neg %5; %7:f32 = div %6, %2; %8:f32 = mul %2, %2; %9:f32 = sub %0, %8; "
         "%10:f32 = mul %7, %9; %11:f32 = add %3, %10; return %11"),
    case("d neg(x)=-g",
         "%0:f32 = input x; %1:f32 = neg %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = neg %0; return %1"),
    case("d abs(x)=g*sign(x)",
         "%0:f32 = input x; %1:f32 = abs %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = sign %1; %3:f32 = mul %0, %2; return %3"),
    case("d x**0: nothing flows",
         "%0:f32 = input x; %1:f32 = pow %0, 0; %2:f32 = add %0, %1; return %2",
         "%0:f32 = const 1.0; return %0"),
    case("d x**3=g*(3*x**2)",
         "%0:f32 = input x; %1:f32 = pow %0, 3; return %1",
         "%0:f32 = const 1.0; %1:f32 = const 3.0; %2:f32 = input x; %3:f32 = pow %2, 2; %4:f32 = mul %1, %3; "
         "%5:f32 = mul %0, %4; return %5"),
    case("d clip=g*inside, same bounds (an infinite side included)",
         "%0:f32 = input x; %1:f32 = clip %0, -5.0, inf; return %1",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = inside %1, -5.0, inf; %3:f32 = mul %0, %2; return %3"),
    case("d tanh=g*(1-t*t) with t the forward tanh",
         "%0:f32 = input x; %1:f32 = tanh %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = tanh %1; %3:f32 = mul %2, %2; %4:f32 = sub %0, %3; "
         "%5:f32 = mul %0, %4; return %5"),
    case("d sigmoid(40x)=g*(s*(1-s))*40",
         "%0:f32 = const 40.0; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = sigmoid %2; return %3",
         "%0:f32 = const 1.0; %1:f32 = const 40.0; %2:f32 = input x; %3:f32 = mul %1, %2; %4:f32 = sigmoid %3; "
         "%5:f32 = sub %0, %4; %6:f32 = mul %4, %5; %7:f32 = mul %0, %6; %8:f32 = mul %7, %1; return %8"),
    case("d exp=g*e with e the forward exp",
         "%0:f32 = input x; %1:f32 = exp %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = exp %1; %3:f32 = mul %0, %2; return %3"),
    case("d inside = d sign = nothing (piecewise constant)",
         "%0:f32 = input x; %1:f32 = inside %0, -1.0, 1.0; %2:f32 = sign %0; %3:f32 = add %1, %2; "
         "%4:f32 = mul %0, %3; return %4",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = inside %1, -1.0, 1.0; %3:f32 = sign %1; "
         "%4:f32 = add %2, %3; %5:f32 = mul %0, %4; return %5"),
    case("two users of x sum with +",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = const 0.27; %3:f32 = add %0, %2; %4:f32 = tanh %3; "
         "%5:f32 = add %1, %4; return %5",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = const 0.27; %3:f32 = add %1, %2; %4:f32 = tanh %3; "
         "%5:f32 = mul %4, %4; %6:f32 = sub %0, %5; %7:f32 = mul %0, %6; %8:f32 = tanh %1; %9:f32 = mul %8, %8; "
         "%10:f32 = sub %0, %9; %11:f32 = mul %0, %10; %12:f32 = add %7, %11; return %12"),
    case("no x: the derivative is 0",
         "%0:f32 = const 2.0; %1:f32 = tanh %0; return %1",
         "%0:f32 = const 0.0; return %0"),
]


@pytest.mark.parametrize("before, after", CASES)
def test_derivative_pass(before: str, after: str) -> None:
    assert print_ir(run(before)[0]) == lines(after)


def test_every_gradient_rule_fires_in_some_case() -> None:
    fired = {f for before, _ in (c.values for c in CASES) for f in run(before)[1]}
    missing = [r.name for r in GRADIENTS if r.fired not in fired]
    assert not missing, f"no golden case fires {missing}"


def test_every_op_before_lowering_has_a_rule() -> None:
    """Every f32 op a forward expression can hold before lowering has exactly one rule that applies to it."""
    unlowered = {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.NEG, Op.ABS, Op.POW, Op.CLIP, Op.INSIDE, Op.SIGN, Op.TANH,
                 Op.SIGMOID, Op.EXP}
    assert {op for op in Op if GRADIENTS.by_op[op]} == unlowered


def test_rules_reuse_the_forward_nodes() -> None:
    """tanh' is built on the forward tanh node itself (hash-consing shares it), sigmoid' and exp' alike."""
    for text, op in [("2.9*tanh(x) + 0.158", Op.TANH), ("sigmoid(3*x)", Op.SIGMOID), ("exp(x) + x", Op.EXP)]:
        forward = optimize(parse(text), "precise").optimized
        (f,) = [n for n in forward.toposort() if n.op is op]
        assert f in derivative(forward).toposort()
        assert sum(n.op is op for n in optimize_derivative(forward, "precise").optimized.toposort()) == 1


# -- the pipeline around it ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_pipeline_is_the_derivative_then_the_forward_passes(mode: str) -> None:
    assert [p.name for p in derivative_pipeline(mode)] == ["derivative"] + [p.name for p in pipeline(mode)]
    forward = optimize(parse("2.5*tanh(clip(x)) + 0.135"), mode)
    assert forward.optimized is forward.stages[5].root and forward.stages[6].name == "lower-transcendentals"
    grad = optimize_derivative(forward.optimized, mode)
    assert [s.name for s in grad.stages] == ["input"] + [p.name for p in derivative_pipeline(mode)]
    assert grad.stages[0].root is forward.optimized
    assert grad.optimized is grad.stages[6].root and grad.stages[6].name == "simplify"


OPTIMIZED = [  # expression -> f' after the optimization passes (before lowering), as text
    ("-0.522*x + 2.11*clip(x)",
     "%0:f32 = const 2.11; %1:f32 = input x; %2:f32 = mul %0, %1; "
     "%3:f32 = inside %2, -10.549999999999999, 10.549999999999999; %4:f32 = mul %0, %3; %5:f32 = const -0.522; "
     "%6:f32 = add %4, %5; return %6"),
    ("2.5*tanh(clip(x)) + 0.135",
     "%0:f32 = const -2.5; %1:f32 = input x; %2:f32 = clip %1, -5.0, 5.0; %3:f32 = tanh %2; %4:f32 = mul %3, %3; "
     "%5:f32 = mul %0, %4; %6:f32 = const 2.5; %7:f32 = add %5, %6; %8:f32 = inside %1, -5.0, 5.0; "
     "%9:f32 = mul %7, %8; return %9"),
    ("sigmoid(40*x)",
     "%0:f32 = const 40.0; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = sigmoid %2; %4:f32 = neg %3; "
     "%5:f32 = const 1.0; %6:f32 = add %4, %5; %7:f32 = mul %3, %6; %8:f32 = mul %0, %7; return %8"),
    ("abs(x)/3 + exp(-x)",
     "%0:f32 = const 0.3333333333333333; %1:f32 = input x; %2:f32 = sign %1; %3:f32 = mul %0, %2; "
     "%4:f32 = neg %1; %5:f32 = exp %4; %6:f32 = sub %3, %5; return %6"),
    ("tanh(x) + tanh(x + 0.27)",
     "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = mul %1, %1; %3:f32 = neg %2; %4:f32 = const 0.27; "
     "%5:f32 = add %0, %4; %6:f32 = tanh %5; %7:f32 = mul %6, %6; %8:f32 = sub %3, %7; %9:f32 = const 2.0; "
     "%10:f32 = add %8, %9; return %10"),
]


@pytest.mark.parametrize("text, expected", OPTIMIZED, ids=[t for t, _ in OPTIMIZED])
def test_optimized_derivative(text: str, expected: str) -> None:
    for mode in MODES:  # the optimization passes are mode-independent: lowering comes after
        assert print_ir(optimize_derivative(optimize(parse(text), mode).optimized, mode).optimized) == lines(expected)


@pytest.mark.parametrize("mode", MODES)
def test_lowered_derivative_is_plain_code_with_a_cost(mode: str) -> None:
    """The lowered f' holds only ops of the mode's lowering (no tanh/sigmoid/pow left where the mode lowers them),
    and the cost model counts it (inside and sign are 0 FLOPs, like clip)."""
    forward = optimize(parse("x*tanh(sigmoid(clip(-0.000308*x**2))) + abs(x)"), mode)
    grad = optimize_derivative(forward.optimized, mode)
    ops = {n.op for n in grad.root.toposort()}
    assert Op.SIGMOID not in ops and Op.POW not in ops and {Op.INSIDE, Op.SIGN} <= ops
    assert (Op.TANH in ops) == (mode == "precise") and (Op.EXP in ops) == (mode == "precise")
    assert dag_flops(grad.root) > dag_flops(forward.root) > 0
    # 1.61238*inside(1.61238*x, ...): two multiplications
    assert dag_flops(optimize_derivative(optimize(parse("0.698*clip(2.31*x)"), mode).optimized, mode).root) == 2


def test_trace_lists_the_rules_applied() -> None:
    grad = optimize_derivative(optimize(parse("tanh(2*x)"), "precise").optimized, "precise", trace=True)
    assert [f.name for f in grad.stages[1].fired] == [
        "d tanh(a) = g*(1 - t*t)   (t = tanh(a), the forward value)", "d(a*b) = g*b, g*a"]


# -- what it refuses -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, op", [("fast", "tanh_approx:f32"), ("horner", "bitcast:f32")])
def test_lowered_ir_is_refused_naming_the_op(mode: str, op: str) -> None:
    lowered = optimize(parse("tanh(x)"), mode).root
    with pytest.raises(ExprcError, match=f"during pass derivative: no derivative rule for {op} .*before lowering"):
        optimize_derivative(lowered, mode)


def test_a_non_f32_root_is_refused() -> None:
    with pytest.raises(ExprcError, match="needs an f32 root"):
        derivative(Node(Op.CAST, I32, (var(),)))
    assert derivative(const(1.0)) is const(0.0) and derivative(var()) is const(1.0)
    assert Node(Op.CONST, F32, (), 1.0) is const(1.0)
