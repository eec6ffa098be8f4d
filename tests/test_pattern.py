"""The pattern matcher and the rewrite engine's per-op dispatch."""

from __future__ import annotations

import pytest

from exprc.errors import ExprcError
from exprc.ir import F32, I32, Node, Op, const, unary, var
from exprc.passes.pattern import C, P, not_const
from exprc.passes.rewrite import MAX_REWRITES_PER_NODE, Fired, Rule, RuleTable, rewrite

X = var()
T = unary(Op.TANH, X)
A, B = P.var("a"), P.var("b")


def match(p: P, n: Node) -> dict | None:
    binds: dict = {}
    return binds if p.match(n, binds) else None


def test_op_sources_and_bindings() -> None:
    assert match(P(Op.MUL, C("c"), A), const(2.0) * T) == {"c": 2.0, "a": T}
    assert match(P(Op.MUL, A, C("c")), const(2.0) * T) is None  # source order matters
    assert match(P(Op.ADD, C("c"), A), const(2.0) * T) is None  # op
    assert match(P((Op.ADD, Op.MUL), A, B), const(2.0) * T) == {"a": const(2.0), "b": T}  # a set of ops
    assert match(P(None, A, B), T + X) == {"a": T, "b": X}  # any op
    assert match(P(Op.TANH), T) == {} and match(P(Op.TANH, A, B), T) is None  # sources: any, or exactly these


def test_nested_patterns_and_root_name() -> None:
    n = -(const(3.0) * X)
    assert match(P(Op.NEG, P(Op.MUL, C("c"), A), name="n"), n) == {"c": 3.0, "a": X, "n": n}
    assert match(P(Op.NEG, P(Op.DIV, C("c"), A)), n) is None


def test_a_name_bound_twice_must_be_the_same_node() -> None:
    assert match(P(Op.ADD, A, A), T + T) == {"a": T}
    assert match(P(Op.ADD, A, A), T + X) is None


def test_constants() -> None:
    assert match(C(1.0), const(1.0)) == {} and match(C(1.0), const(2.0)) is None
    assert match(C(0.0), const(-0.0)) == {}  # by ==, as the rules always compared
    assert match(C("c"), const(3, I32)) is None  # f32 constants only
    assert match(C("c"), X) is None
    assert match(C("c", lambda v: v > 0), const(2.0)) == {"c": 2.0}
    assert match(C("c", lambda v: v > 0), const(-2.0)) is None


def test_dtype_arg_and_predicate() -> None:
    i = Node(Op.ADD, I32, (const(1, I32), const(2, I32)))
    assert match(P(Op.ADD, dtype=F32), i) is None and match(P(Op.ADD, dtype=I32), i) == {}
    p2 = Node(Op.POW, F32, (X,), 2)
    assert match(P(Op.POW, A, arg=2), p2) == {"a": X} and match(P(Op.POW, A, arg=3), p2) is None
    assert match(P.var("a", not_const), X) == {"a": X}
    assert match(P.var("a", not_const), const(1.0)) is None
    assert match(P.var("a", not_const), const(1, I32)) == {"a": const(1, I32)}  # only f32 constants count


def _table() -> RuleTable:
    return RuleTable([
        ("tanh(a) -> a", P(Op.TANH, A), lambda a: a),
        ("first: c*a -> a", P(Op.MUL, C("c"), A), lambda c, a: a),
        ("second: c*a -> neg(a)", P(Op.MUL, C("c"), A), lambda c, a: -a),
        ("any op", P(None, name="n"), lambda n: None),
    ])


def test_dispatch_by_op_keeps_table_order() -> None:
    t = _table()
    assert [r.name for r in t.by_op[Op.MUL]] == ["first: c*a -> a", "second: c*a -> neg(a)", "any op"]
    assert [r.name for r in t.by_op[Op.TANH]] == ["tanh(a) -> a", "any op"]
    assert [r.name for r in t.by_op[Op.ADD]] == ["any op"]
    assert set(t.by_op) == set(Op)


def test_first_rule_in_table_order_wins_and_is_traced() -> None:
    trace: list[Fired] = []
    assert rewrite(const(2.0) * unary(Op.TANH, X), _table(), trace) is X
    assert [f.name for f in trace] == ["tanh(a) -> a", "first: c*a -> a"]
    assert all(f.where.startswith("test_pattern.py:") for f in trace)


def test_rule_where_is_the_line_of_its_replacement() -> None:
    rule = Rule.of("x", P(Op.TANH, A), lambda a: a)
    assert rule.where == f"test_pattern.py:{test_rule_where_is_the_line_of_its_replacement.__code__.co_firstlineno + 1}"
    assert rule.ops == frozenset({Op.TANH}) and rule.fired == Fired("x", rule.where)


def test_a_guard_that_returns_none_does_not_fire() -> None:
    trace: list[Fired] = []
    table = RuleTable([("never", P(Op.TANH, A), lambda a: None)])
    assert rewrite(T, table, trace) is T and trace == []


def test_rules_that_undo_each_other_hit_the_cap() -> None:
    loop = RuleTable([("neg(a) -> tanh(a)", P(Op.NEG, A), lambda a: unary(Op.TANH, a)),
                      ("tanh(a) -> neg(a)", P(Op.TANH, A), lambda a: -a)])
    with pytest.raises(ExprcError, match=f"fixpoint after {MAX_REWRITES_PER_NODE}"):
        rewrite(-X, loop)
