"""Golden tests of every pass, IR text in, IR text out: each case runs ONE pass on the input IR and compares the
printed result. Cases cover every rule of every rule table (`test_every_rule_fires_in_some_case`: a new rule
without a case fails), the cases where a rule must not fire, and the ranges pass (its output annotated with each
node's interval). IR text is written one statement per `;`-separated part, as `print_ir` prints it line by line.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import exprc.passes
from exprc import parse
from exprc.ir import Node, Op, clip, parse_ir, print_ir, var, verify
from exprc.passes import derivative, fold_constants, fuse_clip_tanh, lower_exp, lower_reciprocal, share_exp, simplify
from exprc.passes.fold_constants import FoldConstants
from exprc.passes.fuse_clip_tanh import FuseClipTanh
from exprc.passes.lower_exp import LowerExp
from exprc.passes.lower_reciprocal import LowerReciprocal
from exprc.passes.lower_transcendentals import LOWERING_RULES, LowerTranscendentals
from exprc.passes.pipeline import MODES, PassContext, optimize
from exprc.passes.ranges import Ranges, format_interval
from exprc.passes.rewrite import Fired, RuleTable
from exprc.passes.share_exp import ShareExp
from exprc.passes.simplify import Simplify

PASSES = {
    "fold-constants": FoldConstants(), "simplify": Simplify(), "ranges": Ranges(), "fuse-clip-tanh": FuseClipTanh(),
    **{f"lower-transcendentals/{mode}": LowerTranscendentals(mode) for mode in MODES},
    "share-exp": ShareExp(), "lower-exp": LowerExp(), "lower-reciprocal": LowerReciprocal(),
}
# pass -> the rules its cases must fire, every one (share-exp's single rule is built per call: checked by name)
TABLES: dict[str, RuleTable] = {
    "fold-constants": fold_constants.RULES, "simplify": simplify.RULES, "fuse-clip-tanh": fuse_clip_tanh.RULES,
    **{f"lower-transcendentals/{mode}": LOWERING_RULES[mode] for mode in MODES}, "lower-exp": lower_exp.RULES,
    "lower-reciprocal": lower_reciprocal.RULES,
}


def lines(text: str) -> str:
    return "\n".join(part.strip() for part in text.split(";"))


def show(name: str, root: Node) -> str:
    """The IR text of `root`; after the ranges pass, each line with the node's interval."""
    text = print_ir(root).split("\n")
    if name == "ranges":
        text = [f"{line}  {format_interval(n)}" for line, n in zip(text, root.toposort(), strict=False)] + text[-1:]
    return "\n".join(text)


def run_pass(name: str, text: str) -> tuple[Node, list[Fired]]:
    trace: list[Fired] = []
    root = verify(parse_ir(lines(text)))
    return verify(PASSES[name].run(root, PassContext(name.split("/")[-1], trace))), trace


def case(name: str, id: str, before: str, after: str):
    return pytest.param(name, before, after, id=f"{name}: {id}")


CASES = [
    case("fold-constants", "op(const...)->const",
         "%0:f32 = input x; %1:f32 = const 2.0; %2:f32 = const 3.0; %3:f32 = mul %1, %2; %4:f32 = add %0, %3; "
         "return %4",
         "%0:f32 = input x; %1:f32 = const 6.0; %2:f32 = add %0, %1; return %2"),
    case("fold-constants", "fold-i32-bitcast",
         "%0:i32 = const 127; %1:i32 = shl %0, 23; %2:f32 = bitcast %1; %3:f32 = input x; %4:f32 = mul %2, %3; "
         "return %4",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = mul %0, %1; return %2"),
    case("fold-constants", "fold-not-finite-kept",
         "%0:f32 = input x; %1:f32 = const 1e+300; %2:f32 = mul %1, %1; %3:f32 = add %0, %2; return %3",
         "%0:f32 = input x; %1:f32 = const 1e+300; %2:f32 = mul %1, %1; %3:f32 = add %0, %2; return %3"),
    case("fold-constants", "fold-tanh",
         "%0:f32 = const 0.5; %1:f32 = tanh %0; return %1",
         "%0:f32 = const 0.46211715726000974; return %0"),
    case("simplify", "a*c->c*a",
         "%0:f32 = input x; %1:f32 = const 2.0; %2:f32 = mul %0, %1; return %2",
         "%0:f32 = const 2.0; %1:f32 = input x; %2:f32 = mul %0, %1; return %2"),
    case("simplify", "c+a->a+c",
         "%0:f32 = const 2.0; %1:f32 = input x; %2:f32 = add %0, %1; return %2",
         "%0:f32 = input x; %1:f32 = const 2.0; %2:f32 = add %0, %1; return %2"),
    case("simplify", "a-c->a+(-c)",
         "%0:f32 = input x; %1:f32 = const 0.039; %2:f32 = sub %0, %1; return %2",
         "%0:f32 = input x; %1:f32 = const -0.039; %2:f32 = add %0, %1; return %2"),
    case("simplify", "c-a->neg(a)+c",
         "%0:f32 = const 3.0; %1:f32 = input x; %2:f32 = sub %0, %1; return %2",
         "%0:f32 = input x; %1:f32 = neg %0; %2:f32 = const 3.0; %3:f32 = add %1, %2; return %3"),
    case("simplify", "1*a->a",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = mul %0, %1; return %2",
         "%0:f32 = input x; return %0"),
    case("simplify", "-1*a->neg(a)",
         "%0:f32 = const -1.0; %1:f32 = input x; %2:f32 = tanh %1; %3:f32 = mul %0, %2; return %3",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = neg %1; return %2"),
    case("simplify", "a+0->a",
         "%0:f32 = input x; %1:f32 = const 0.0; %2:f32 = add %0, %1; return %2",
         "%0:f32 = input x; return %0"),
    case("simplify", "a+(-0)->a",
         "%0:f32 = input x; %1:f32 = const -0.0; %2:f32 = add %0, %1; return %2",
         "%0:f32 = input x; return %0"),
    case("simplify", "a/1->a",
         "%0:f32 = input x; %1:f32 = const 1.0; %2:f32 = div %0, %1; return %2",
         "%0:f32 = input x; return %0"),
    case("simplify", "a/c->(1/c)*a",
         "%0:f32 = input x; %1:f32 = const -4.0; %2:f32 = div %0, %1; return %2",
         "%0:f32 = const -0.25; %1:f32 = input x; %2:f32 = mul %0, %1; return %2"),
    case("simplify", "a/c-kept-not-pow2",
         "%0:f32 = input x; %1:f32 = const 3.0; %2:f32 = div %0, %1; return %2",
         "%0:f32 = input x; %1:f32 = const 3.0; %2:f32 = div %0, %1; return %2"),
    case("simplify", "a**1->a",
         "%0:f32 = input x; %1:f32 = pow %0, 1; return %1",
         "%0:f32 = input x; return %0"),
    case("simplify", "a**0->1",
         "%0:f32 = input x; %1:f32 = pow %0, 0; %2:f32 = add %0, %1; return %2",
         "%0:f32 = input x; %1:f32 = const 1.0; %2:f32 = add %0, %1; return %2"),
    case("simplify", "neg(neg(a))->a",
         "%0:f32 = input x; %1:f32 = neg %0; %2:f32 = neg %1; return %2",
         "%0:f32 = input x; return %0"),
    case("simplify", "neg(c*a)->(-c)*a",
         "%0:f32 = const 2.0; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = neg %2; return %3",
         "%0:f32 = const -2.0; %1:f32 = input x; %2:f32 = mul %0, %1; return %2"),
    case("simplify", "c*neg(a)->(-c)*a",
         "%0:f32 = const 2.0; %1:f32 = input x; %2:f32 = neg %1; %3:f32 = mul %0, %2; return %3",
         "%0:f32 = const -2.0; %1:f32 = input x; %2:f32 = mul %0, %1; return %2"),
    case("simplify", "neg(a+c)->neg(a)+(-c)",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = const 0.5; %3:f32 = add %1, %2; %4:f32 = neg %3; return %4",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = neg %1; %3:f32 = const -0.5; %4:f32 = add %2, %3; return %4"),
    case("simplify", "a+neg(b)->a-b",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = neg %1; %3:f32 = add %1, %2; return %3",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = sub %1, %1; return %2"),
    case("simplify", "neg(a)+b->b-a",
         "%0:f32 = input x; %1:f32 = neg %0; %2:f32 = tanh %0; %3:f32 = add %1, %2; return %3",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = sub %1, %0; return %2"),
    case("simplify", "a-neg(b)->a+b",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = neg %1; %3:f32 = sub %0, %2; return %3",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = add %0, %1; return %2"),
    case("simplify", "abs(neg(a))->abs(a)",
         "%0:f32 = input x; %1:f32 = neg %0; %2:f32 = abs %1; return %2",
         "%0:f32 = input x; %1:f32 = abs %0; return %1"),
    case("simplify", "abs(abs(a))->abs(a)",
         "%0:f32 = input x; %1:f32 = abs %0; %2:f32 = abs %1; return %2",
         "%0:f32 = input x; %1:f32 = abs %0; return %1"),
    case("simplify", "c1*(c2*a)->(c1*c2)*a",
         "%0:f32 = const 2.0; %1:f32 = const 3.0; %2:f32 = input x; %3:f32 = mul %1, %2; %4:f32 = mul %0, %3; "
         "return %4",
         "%0:f32 = const 6.0; %1:f32 = input x; %2:f32 = mul %0, %1; return %2"),
    case("simplify", "c1*(c2*a)-kept-overflow",
         "%0:f32 = const 1e+300; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = mul %0, %2; return %3",
         "%0:f32 = const 1e+300; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = mul %0, %2; return %3"),
    case("simplify", "c1*(c2/a)->(c1*c2)/a",
         "%0:f32 = const 2.0; %1:f32 = const 3.0; %2:f32 = input x; %3:f32 = div %1, %2; %4:f32 = mul %0, %3; "
         "return %4",
         "%0:f32 = const 6.0; %1:f32 = input x; %2:f32 = div %0, %1; return %2"),
    case("simplify", "neg(c/a)->(-c)/a",
         "%0:f32 = const 3.0; %1:f32 = input x; %2:f32 = div %0, %1; %3:f32 = neg %2; return %3",
         "%0:f32 = const -3.0; %1:f32 = input x; %2:f32 = div %0, %1; return %2"),
    case("simplify", "c1*(a+c2)->c1*a+c1*c2",
         "%0:f32 = const 2.0; %1:f32 = input x; %2:f32 = const 0.0719; %3:f32 = add %1, %2; %4:f32 = mul %0, %3; "
         "return %4",
         "%0:f32 = const 2.0; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = const 0.1438; %4:f32 = add %2, %3; "
         "return %4"),
    case("simplify", "(a+c1)+c2->a+(c1+c2)",
         "%0:f32 = input x; %1:f32 = const 1.0; %2:f32 = add %0, %1; %3:f32 = const 2.0; %4:f32 = add %2, %3; "
         "return %4",
         "%0:f32 = input x; %1:f32 = const 3.0; %2:f32 = add %0, %1; return %2"),
    case("simplify", "(a+c)+b->(a+b)+c",
         "%0:f32 = input x; %1:f32 = const 1.0; %2:f32 = add %0, %1; %3:f32 = tanh %0; %4:f32 = add %2, %3; "
         "return %4",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = add %0, %1; %3:f32 = const 1.0; %4:f32 = add %2, %3; "
         "return %4"),
    case("simplify", "a+(b+c)->(a+b)+c",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = const 1.0; %3:f32 = add %0, %2; %4:f32 = add %1, %3; "
         "return %4",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = add %1, %0; %3:f32 = const 1.0; %4:f32 = add %2, %3; "
         "return %4"),
    case("simplify", "(a+c)-b->(a-b)+c",
         "%0:f32 = input x; %1:f32 = const 1.0; %2:f32 = add %0, %1; %3:f32 = tanh %0; %4:f32 = sub %2, %3; "
         "return %4",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = sub %0, %1; %3:f32 = const 1.0; %4:f32 = add %2, %3; "
         "return %4"),
    case("simplify", "clip(clip)->clip",
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, 4.0; %2:f32 = clip %1, -5.0, 2.0; return %2",
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, 2.0; return %1"),
    case("simplify", "clip(clip)-kept-disjoint",
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, -2.0; %2:f32 = clip %1, 1.0, 2.0; return %2",
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, -2.0; %2:f32 = clip %1, 1.0, 2.0; return %2"),
    case("simplify", "c*clip->clip(c*a)",
         "%0:f32 = const 0.5; %1:f32 = const 2.0; %2:f32 = input x; %3:f32 = mul %1, %2; %4:f32 = clip %3, -5.0, 5.0; "
         "%5:f32 = mul %0, %4; return %5",
         "%0:f32 = input x; %1:f32 = clip %0, -2.5, 2.5; return %1"),
    case("simplify", "c*clip->clip(c*a)-negative",
         "%0:f32 = const -2.0; %1:f32 = input x; %2:f32 = clip %1, -1.0, 3.0; %3:f32 = mul %0, %2; return %3",
         "%0:f32 = const -2.0; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = clip %2, -6.0, 2.0; return %3"),
    case("simplify", "clip(a,-inf,inf)->a",
         "%0:f32 = input x; %1:f32 = clip %0, -inf, inf; %2:f32 = tanh %1; return %2",
         "%0:f32 = input x; %1:f32 = tanh %0; return %1"),
    case("simplify", "paper-layer",
         "%0:f32 = const -0.522; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = const 2.11; "
         "%4:f32 = clip %1, -5.0, 5.0; %5:f32 = mul %3, %4; %6:f32 = add %2, %5; return %6",
         "%0:f32 = const -0.522; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = const 2.11; %4:f32 = mul %3, %1; "
         "%5:f32 = clip %4, -10.549999999999999, 10.549999999999999; %6:f32 = add %2, %5; return %6"),
    case("ranges", "ranges",
         "%0:f32 = const 5.0; %1:f32 = input x; %2:f32 = tanh %1; %3:f32 = mul %0, %2; %4:f32 = sigmoid %1; "
         "%5:f32 = add %3, %4; %6:f32 = exp %1; %7:f32 = neg %6; %8:f32 = clip %7, -5.0, 5.0; %9:f32 = div %5, %8; "
         "%10:f32 = abs %3; %11:f32 = pow %2, 2; %12:f32 = sub %10, %11; %13:f32 = mul %9, %12; return %13",
         "%0:f32 = const 5.0  [5, 5]; %1:f32 = input x  [-inf, inf]; %2:f32 = tanh %1  [-1, 1]; "
         "%3:f32 = mul %0, %2  [-5, 5]; %4:f32 = sigmoid %1  [0, 1]; %5:f32 = add %3, %4  [-5, 6]; "
         "%6:f32 = exp %1  [0, inf]; %7:f32 = neg %6  [-inf, -0]; %8:f32 = clip %7, -5.0, 5.0  [-5, -0]; "
         "%9:f32 = div %5, %8  [-inf, inf]; %10:f32 = abs %3  [0, 5]; %11:f32 = pow %2, 2  [0, 1]; "
         "%12:f32 = sub %10, %11  [-1, 5]; %13:f32 = mul %9, %12  [-inf, inf]; return %13"),
    case("fuse-clip-tanh", "clip-fits",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = clip %1, -5.0, 5.0; return %2",
         "%0:f32 = input x; %1:f32 = tanh %0; return %1"),
    case("fuse-clip-tanh", "clip-lo-unreachable",
         "%0:f32 = input x; %1:f32 = exp %0; %2:f32 = clip %1, -5.0, 5.0; return %2",
         "%0:f32 = input x; %1:f32 = exp %0; %2:f32 = clip %1, -inf, 5.0; return %2"),
    case("fuse-clip-tanh", "clip-hi-unreachable",
         "%0:f32 = input x; %1:f32 = exp %0; %2:f32 = neg %1; %3:f32 = clip %2, -5.0, 5.0; return %3",
         "%0:f32 = input x; %1:f32 = exp %0; %2:f32 = neg %1; %3:f32 = clip %2, -5.0, inf; return %3"),
    case("fuse-clip-tanh", "tanh-saturates",
         "%0:f32 = input x; %1:f32 = clip %0, -20.0, 20.0; %2:f32 = tanh %1; return %2",
         "%0:f32 = input x; %1:f32 = tanh %0; return %1"),
    case("fuse-clip-tanh", "sigmoid-saturates-hi",
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, 30.0; %2:f32 = sigmoid %1; return %2",
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, inf; %2:f32 = sigmoid %1; return %2"),
    case("fuse-clip-tanh", "tanh-clip-5-kept",
         "%0:f32 = input x; %1:f32 = clip %0, -5.0, 5.0; %2:f32 = tanh %1; return %2",
         "%0:f32 = input x; %1:f32 = clip %0, -5.0, 5.0; %2:f32 = tanh %1; return %2"),
    case("fuse-clip-tanh", "clip-fits-nested",
         "%0:f32 = const 0.471; %1:f32 = const 2.58; %2:f32 = input x; %3:f32 = mul %1, %2; "
         "%4:f32 = clip %3, -5.0, 5.0; %5:f32 = mul %0, %4; %6:f32 = clip %5, -5.0, 5.0; return %6",
         "%0:f32 = const 0.471; %1:f32 = const 2.58; %2:f32 = input x; %3:f32 = mul %1, %2; "
         "%4:f32 = clip %3, -5.0, 5.0; %5:f32 = mul %0, %4; return %5"),
    case("fuse-clip-tanh", "one-sided-pow",
         "%0:f32 = const -0.000308; %1:f32 = input x; %2:f32 = pow %1, 2; %3:f32 = mul %0, %2; "
         "%4:f32 = clip %3, -5.0, 5.0; return %4",
         "%0:f32 = const -0.000308; %1:f32 = input x; %2:f32 = pow %1, 2; %3:f32 = mul %0, %2; "
         "%4:f32 = clip %3, -5.0, inf; return %4"),
    case("fuse-clip-tanh", "sigmoid-saturates-lo",
         "%0:f32 = input x; %1:f32 = clip %0, -200.0, 3.0; %2:f32 = sigmoid %1; return %2",
         "%0:f32 = input x; %1:f32 = clip %0, -inf, 3.0; %2:f32 = sigmoid %1; return %2"),
    case("lower-transcendentals/precise", "precise-sigmoid",
         "%0:f32 = input x; %1:f32 = sigmoid %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = neg %1; %3:f32 = exp %2; %4:f32 = add %0, %3; "
         "%5:f32 = div %0, %4; return %5"),
    case("lower-transcendentals/precise", "precise-tanh-exp-kept",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = exp %1; return %2",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = exp %1; return %2"),
    case("lower-transcendentals/precise", "precise-pow5",
         "%0:f32 = input x; %1:f32 = pow %0, 5; return %1",
         "%0:f32 = input x; %1:f32 = mul %0, %0; %2:f32 = mul %1, %1; %3:f32 = mul %0, %2; return %3"),
    case("lower-transcendentals/fast", "fast-tanh",
         "%0:f32 = input x; %1:f32 = tanh %0; return %1",
         "%0:f32 = input x; %1:f32 = tanh_approx %0; return %1"),
    case("lower-transcendentals/fast", "fast-sigmoid",
         "%0:f32 = input x; %1:f32 = sigmoid %0; return %1",
         "%0:f32 = const 0.5; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = tanh_approx %2; %4:f32 = mul %0, %3; "
         "%5:f32 = add %0, %4; return %5"),
    case("lower-transcendentals/fast", "fast-exp",
         "%0:f32 = input x; %1:f32 = exp %0; return %1",
         "%0:f32 = input x; %1:f32 = exp_approx %0; return %1"),
    case("lower-transcendentals/fast", "fast-pow3",
         "%0:f32 = input x; %1:f32 = pow %0, 3; return %1",
         "%0:f32 = input x; %1:f32 = mul %0, %0; %2:f32 = mul %0, %1; return %2"),
    case("lower-transcendentals/horner", "horner-tanh",
         "%0:f32 = input x; %1:f32 = tanh %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = const 2.0; %2:f32 = input x; %3:f32 = mul %1, %2; %4:f32 = exp %3; "
         "%5:f32 = add %4, %0; %6:f32 = div %1, %5; %7:f32 = sub %0, %6; return %7"),
    case("lower-transcendentals/horner", "horner-sigmoid",
         "%0:f32 = input x; %1:f32 = sigmoid %0; return %1",
         "%0:f32 = const 1.0; %1:f32 = input x; %2:f32 = neg %1; %3:f32 = exp %2; %4:f32 = add %0, %3; "
         "%5:f32 = div %0, %4; return %5"),
    case("lower-transcendentals/horner", "horner-exp-kept",
         "%0:f32 = input x; %1:f32 = exp %0; return %1",
         "%0:f32 = input x; %1:f32 = exp %0; return %1"),
    case("lower-transcendentals/horner", "horner-pow2-pow0",
         "%0:f32 = input x; %1:f32 = pow %0, 2; %2:f32 = pow %0, 0; %3:f32 = add %1, %2; return %3",
         "%0:f32 = input x; %1:f32 = mul %0, %0; %2:f32 = const 1.0; %3:f32 = add %1, %2; return %3"),
    case("share-exp", "shifted-exps",
         "%0:f32 = const 2.0; %1:f32 = input x; %2:f32 = mul %0, %1; %3:f32 = exp %2; %4:f32 = const 0.54; "
         "%5:f32 = add %2, %4; %6:f32 = exp %5; %7:f32 = add %3, %6; return %7",
         "%0:f32 = const 0.5827482523739896; %1:f32 = const 2.0; %2:f32 = input x; %3:f32 = mul %1, %2; "
         "%4:f32 = const 0.54; %5:f32 = add %3, %4; %6:f32 = exp %5; %7:f32 = mul %0, %6; %8:f32 = add %7, %6; "
         "return %8"),
    case("share-exp", "same-exp-untouched",
         "%0:f32 = input x; %1:f32 = exp %0; %2:f32 = neg %0; %3:f32 = exp %2; %4:f32 = add %1, %3; return %4",
         "%0:f32 = input x; %1:f32 = exp %0; %2:f32 = neg %0; %3:f32 = exp %2; %4:f32 = add %1, %3; return %4"),
    case("lower-exp", "exp-unbounded",
         "%0:f32 = input x; %1:f32 = exp %0; return %1",
         "%0:f32 = const 0.0001984126984126984; %1:f32 = input x; %2:f32 = clip %1, -86.6, 89.0; "
         "%3:f32 = const 0.693145751953125; %4:f32 = const 1.4426950408889634; %5:f32 = mul %4, %2; "
         "%6:f32 = round %5; %7:f32 = mul %3, %6; %8:f32 = sub %2, %7; %9:f32 = const 1.4286068202862268e-06; "
         "%10:f32 = mul %9, %6; %11:f32 = sub %8, %10; %12:f32 = mul %0, %11; %13:f32 = const 0.001388888888888889; "
         "%14:f32 = add %12, %13; %15:f32 = mul %14, %11; %16:f32 = const 0.008333333333333333; "
         "%17:f32 = add %15, %16; %18:f32 = mul %17, %11; %19:f32 = const 0.041666666666666664; "
         "%20:f32 = add %18, %19; %21:f32 = mul %20, %11; %22:f32 = const 0.16666666666666666; "
         "%23:f32 = add %21, %22; %24:f32 = mul %23, %11; %25:f32 = const 0.5; %26:f32 = add %24, %25; "
         "%27:f32 = mul %26, %11; %28:f32 = const 1.0; %29:f32 = add %27, %28; %30:f32 = mul %29, %11; "
         "%31:f32 = add %30, %28; %32:i32 = cast %6; %33:i32 = const 126; %34:i32 = add %32, %33; "
         "%35:i32 = shl %34, 23; %36:f32 = bitcast %35; %37:f32 = mul %31, %36; %38:f32 = const 2.0; "
         "%39:f32 = mul %37, %38; return %39"),
    case("lower-exp", "exp-bounded",
         "%0:f32 = input x; %1:f32 = tanh %0; %2:f32 = exp %1; return %2",
         "%0:f32 = const 0.0001984126984126984; %1:f32 = input x; %2:f32 = tanh %1; %3:f32 = const 0.693145751953125; "
         "%4:f32 = const 1.4426950408889634; %5:f32 = mul %4, %2; %6:f32 = round %5; %7:f32 = mul %3, %6; "
         "%8:f32 = sub %2, %7; %9:f32 = const 1.4286068202862268e-06; %10:f32 = mul %9, %6; %11:f32 = sub %8, %10; "
         "%12:f32 = mul %0, %11; %13:f32 = const 0.001388888888888889; %14:f32 = add %12, %13; "
         "%15:f32 = mul %14, %11; %16:f32 = const 0.008333333333333333; %17:f32 = add %15, %16; "
         "%18:f32 = mul %17, %11; %19:f32 = const 0.041666666666666664; %20:f32 = add %18, %19; "
         "%21:f32 = mul %20, %11; %22:f32 = const 0.16666666666666666; %23:f32 = add %21, %22; "
         "%24:f32 = mul %23, %11; %25:f32 = const 0.5; %26:f32 = add %24, %25; %27:f32 = mul %26, %11; "
         "%28:f32 = const 1.0; %29:f32 = add %27, %28; %30:f32 = mul %29, %11; %31:f32 = add %30, %28; "
         "%32:i32 = cast %6; %33:i32 = const 126; %34:i32 = add %32, %33; %35:i32 = shl %34, 23; "
         "%36:f32 = bitcast %35; %37:f32 = mul %31, %36; %38:f32 = const 2.0; %39:f32 = mul %37, %38; return %39"),
    # tanh's 2/(e^2a + 1): a divisor >= 1 of unbounded range, clamped at 2^125 (and flushed to 0 past it); seed,
    # three Newton steps
    case("lower-reciprocal", "divisor-at-least-one",
         "%0:f32 = input x; %1:f32 = exp %0; %2:f32 = const 1.0; %3:f32 = add %1, %2; %4:f32 = const 2.0; "
         "%5:f32 = div %4, %3; return %5",
         "%0:f32 = const 2.0; %1:i32 = const 2129859015; %2:f32 = input x; %3:f32 = exp %2; %4:f32 = const 1.0; "
         "%5:f32 = add %3, %4; %6:f32 = clip %5, -inf, 4.253529586511731e+37; %7:i32 = bitcast %6; "
         "%8:i32 = sub %1, %7; %9:f32 = bitcast %8; %10:f32 = mul %6, %9; %11:f32 = sub %4, %10; "
         "%12:f32 = mul %9, %11; %13:f32 = add %9, %12; %14:f32 = mul %6, %13; %15:f32 = sub %4, %14; "
         "%16:f32 = mul %13, %15; %17:f32 = add %13, %16; %18:f32 = mul %6, %17; %19:f32 = sub %4, %18; "
         "%20:f32 = mul %17, %19; %21:f32 = add %17, %20; %22:f32 = inside %5, -inf, 4.253529586511731e+37; "
         "%23:f32 = mul %21, %22; %24:f32 = mul %0, %23; return %24"),
    case("lower-reciprocal", "negative-divisor-by-range",  # 1/b = -(1/-b); 1/... is the reciprocal itself
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, -1.0; %2:f32 = const 1.0; %3:f32 = div %2, %1; return %3",
         "%0:i32 = const 2129859015; %1:f32 = input x; %2:f32 = clip %1, -3.0, -1.0; %3:f32 = neg %2; "
         "%4:i32 = bitcast %3; %5:i32 = sub %0, %4; %6:f32 = bitcast %5; %7:f32 = const 1.0; %8:f32 = mul %3, %6; "
         "%9:f32 = sub %7, %8; %10:f32 = mul %6, %9; %11:f32 = add %6, %10; %12:f32 = mul %3, %11; "
         "%13:f32 = sub %7, %12; %14:f32 = mul %11, %13; %15:f32 = add %11, %14; %16:f32 = mul %3, %15; "
         "%17:f32 = sub %7, %16; %18:f32 = mul %15, %17; %19:f32 = add %15, %18; %20:f32 = neg %19; return %20"),
    case("lower-reciprocal", "divisor-range-spans-zero",  # keeps IEEE division
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, 1.0; %2:f32 = div %0, %1; return %2",
         "%0:f32 = input x; %1:f32 = clip %0, -3.0, 1.0; %2:f32 = div %0, %1; return %2"),
]


@pytest.mark.parametrize("name, before, after", CASES)
def test_pass(name: str, before: str, after: str) -> None:
    assert show(name, run_pass(name, before)[0]) == lines(after)


def test_every_rule_fires_in_some_case() -> None:
    fired: dict[str, set[Fired]] = {name: set() for name in PASSES}
    for name, before, _ in (c.values for c in CASES):
        fired[name].update(run_pass(name, before)[1])
    for name, table in TABLES.items():
        missing = [r.name for r in table if r.fired not in fired[name]]
        assert not missing, f"{name}: no golden case fires {missing}"
    assert {f.name for f in fired["share-exp"]} == {share_exp.SHARED}


def test_every_rule_table_is_covered() -> None:
    """A rule table defined in any pass module is one of TABLES (so its rules need cases too); the gradient table
    has its golden cases, and the same check, in test_passes_derivative.py."""
    covered = {id(t) for t in TABLES.values()} | {id(derivative.GRADIENTS)}
    for info in pkgutil.iter_modules(exprc.passes.__path__):
        module = importlib.import_module(f"exprc.passes.{info.name}")
        for attr, value in vars(module).items():
            tables = value.values() if isinstance(value, dict) else [value]
            for t in tables:
                if isinstance(t, (RuleTable, derivative.GradientTable)):
                    assert id(t) in covered, f"exprc.passes.{info.name}.{attr} has no golden cases"


def test_exp_sharing_computes_one_exp() -> None:
    res = optimize(parse("tanh(x) + tanh(x + 0.27)"), "horner")
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
