"""The rule trace: `optimize(root, mode, trace=True)` lists, for each pass, the rules that fired in it, in order,
each with the file:line of its table entry; a pass in which no rule fired lists nothing (an empty tuple, which
`exprc explain --trace` reports as "no rule fired"), and an untraced run lists None."""

from __future__ import annotations

from pathlib import Path

import pytest

import exprc.passes
from exprc import parse
from exprc.passes.pipeline import MODES, optimize, optimize_derivative
from exprc.passes.rewrite import Fired

PASSES_DIR = Path(exprc.passes.__file__).parent


def fired(text: str, mode: str) -> list[tuple[str, list[str]]]:
    """(pass, names of the rules that fired in it) for every stage after the input."""
    return [(s.name, [f.name for f in s.fired]) for s in optimize(parse(text), mode, trace=True).stages[1:]]


WITHIN = "clip(a, lo, hi) -> a   when range(a) within [lo, hi]"


@pytest.mark.parametrize("text, mode, expected", [
    pytest.param("clip(tanh(x))*1", "precise", [
        ("fold-constants", []),
        ("simplify", ["a*c -> c*a", "1*a -> a"]),
        ("ranges", []),
        ("fuse-clip-tanh", [WITHIN]),
        ("simplify", []), ("lower-transcendentals", []), ("simplify", []), ("share-exp", []), ("fold-constants", []),
    ], id="clip-of-tanh"),
    pytest.param("sigmoid(x - 1)", "horner", [
        ("fold-constants", []),
        ("simplify", ["a-c -> a+(-c)"]),
        ("ranges", []), ("fuse-clip-tanh", []), ("simplify", []),
        ("lower-transcendentals", ["sigmoid(a) -> 1/(1 + exp(-a))"]),
        ("simplify", ["neg(a+c) -> neg(a)+(-c)", "c+a -> a+c"]),
        ("share-exp", []),
        ("lower-reciprocal", ["a/b -> a * reciprocal(b) (b proven in [2^-125, 2^125], or >= 1 clamped there)"]),
        ("lower-exp", ["exp(a) -> horner_exp(a)"]),
        ("fold-constants", []),
    ], id="sigmoid-horner"),
    pytest.param("2*3*x + tanh(x) + tanh(x + 0.27)", "fast", [
        ("fold-constants", ["op(const...) -> const"]),
        ("simplify", []),
        ("ranges", []), ("fuse-clip-tanh", []), ("simplify", []),
        ("lower-transcendentals", ["tanh(a) -> tanh_approx(a)", "tanh(a) -> tanh_approx(a)"]),
        ("simplify", []), ("share-exp", []), ("fold-constants", []),
    ], id="fold-then-fast-tanh"),
])
def test_rules_fire_in_order(text: str, mode: str, expected: list[tuple[str, list[str]]]) -> None:
    assert fired(text, mode) == expected


def test_a_pass_where_no_rule_fired_reports_an_empty_trace() -> None:
    stages = optimize(parse("tanh(x)"), "precise", trace=True).stages
    assert stages[0].name == "input" and stages[0].fired is None  # not a pass
    assert all(s.fired == () for s in stages[1:]), [(s.name, s.fired) for s in stages]


@pytest.mark.parametrize("mode", MODES)
def test_untraced_runs_report_none(mode: str) -> None:
    assert all(s.fired is None for s in optimize(parse("clip(tanh(x))*1 + x*2"), mode).stages)


def test_where_points_at_the_rule_in_its_table() -> None:
    """`where` is file:line of the rule's replacement function: that line or the two above it name the rule."""
    text = "x**3*2 - sigmoid(clip(x) - 1) + exp(neg(x)/2) + tanh(x) + tanh(x + 0.27) + clip(tanh(x))*(2*3) + abs(x)"
    files = set()
    for mode in MODES:
        forward = optimize(parse(text), mode, trace=True)
        for stage in forward.stages + optimize_derivative(forward.optimized, mode, trace=True).stages:
            for f in stage.fired or ():
                file, line = f.where.rsplit(":", 1)
                source = (PASSES_DIR / file).read_text().splitlines()
                near = "\n".join(source[max(int(line) - 3, 0):int(line)])
                assert "lambda" in source[int(line) - 1], f
                assert f.name in near or (file == "share_exp.py" and "SHARED" in near), (f, near)
                files.add(file)
    assert files == {"fold_constants.py", "simplify.py", "fuse_clip_tanh.py", "lower_transcendentals.py",
                     "share_exp.py", "lower_reciprocal.py", "lower_exp.py", "derivative.py"}


def test_fired_prints_as_explain_shows_it() -> None:
    assert str(Fired("1*a -> a", "simplify.py:71")) == "1*a -> a  [simplify.py:71]"


def test_each_pass_has_its_own_trace() -> None:
    stages = optimize(parse("2*(3*x) + sigmoid(x)"), "precise", trace=True).stages
    names = {s.name: [f.name for f in s.fired] for s in stages[1:3]}
    assert names == {"fold-constants": [], "simplify": ["c1*(c2*a) -> (c1*c2)*a"]}
    lowering = next(s for s in stages if s.name == "lower-transcendentals")
    assert [f.name for f in lowering.fired] == ["sigmoid(a) -> 1/(1 + exp(-a))"]
