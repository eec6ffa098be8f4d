"""The rewrite engine: a table of rules applied bottom-up to a fixpoint.

A rule is written as data, one line each (see `pattern.py` for the left-hand side):

    RULES = RuleTable([
        ("1*a -> a", P(Op.MUL, C(1.0), A), lambda a: a),
        ...
    ])

The replacement gets the names the pattern bound and returns the new node, or None when a guard fails (the rule
does not fire). A table dispatches on the op of the node: only the rules whose pattern can match that op are
tried, in table order, so the first rule of the table that fires wins, as if every rule were tried. Every rule
knows where it was defined (file:line of its replacement function), and the trace records each rule that fired.
Because nodes are hash-consed, "nothing changed" is `new is old`. Rules that never settle (that undo each other)
end in an ExprcError after MAX_REWRITES_PER_NODE rewrites of one node, or as many nested inside one another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import ExprcError
from ..ir import Node, Op
from .pattern import P

MAX_REWRITES_PER_NODE = 64


class Fired(NamedTuple):
    """One rule that fired, as a trace records it."""

    name: str  # "c1*(c2*a) -> (c1*c2)*a"
    where: str  # "simplify.py:57"

    def __str__(self) -> str:
        return f"{self.name}  [{self.where}]"


def where_defined(fn: Callable) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return "?"
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


@dataclass(frozen=True)
class Rule:
    name: str  # "c1*(c2*a) -> (c1*c2)*a"
    fn: Callable[[Node], "Node | None"]  # node -> replacement, None when the rule does not apply
    where: str  # file:line of the definition, for traces
    ops: frozenset[Op] | None = None  # the ops of the nodes it can fire on (None: any)

    @staticmethod
    def of(name: str, pattern: P, replace: Callable[..., "Node | None"]) -> "Rule":
        """A rule from a pattern and a replacement taking the names the pattern binds."""

        def fn(node: Node) -> Node | None:
            binds: dict = {}
            return replace(**binds) if pattern.match(node, binds) else None

        return Rule(name, fn, where_defined(replace), pattern.ops)

    def __call__(self, node: Node) -> "Node | None":
        return self.fn(node)

    @property
    def fired(self) -> Fired:
        return Fired(self.name, self.where)


RuleSpec = Rule | tuple[str, P, Callable[..., "Node | None"]]


class RuleTable:
    """Rules in order, with the candidates for each op precomputed."""

    def __init__(self, rules: Iterable[RuleSpec] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(r if isinstance(r, Rule) else Rule.of(*r) for r in rules)
        self.by_op: dict[Op, tuple[Rule, ...]] = {
            op: tuple(r for r in self.rules if r.ops is None or op in r.ops) for op in Op}

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __add__(self, other: "RuleTable") -> "RuleTable":
        return RuleTable((*self.rules, *other.rules))


def rewrite(root: Node, rules: "RuleTable | Iterable[Rule]", trace: list[Fired] | None = None) -> Node:
    """Rewrite every node bottom-up: rebuild it from rewritten sources, then apply rules until none fires."""
    by_op = (rules if isinstance(rules, RuleTable) else RuleTable(rules)).by_op
    done: dict[int, Node] = {}
    keep: list[Node] = []  # keep originals alive so their ids stay unique during the walk
    depth = 0  # rewrites in progress, one inside another (rules that undo each other nest without end)

    def first_firing(node: Node) -> tuple[Rule, Node] | None:
        for r in by_op[node.op]:
            new = r(node)
            if new is not None and new is not node:
                return r, new
        return None

    def fixpoint(node: Node) -> Node:
        nonlocal depth
        for _ in range(MAX_REWRITES_PER_NODE):
            hit = first_firing(node)
            if hit is None:
                return node
            rule, new = hit
            if trace is not None:
                trace.append(rule.fired)
            if depth >= MAX_REWRITES_PER_NODE:
                break
            depth += 1
            node = rebuild(new)
            depth -= 1
        raise ExprcError(f"rewrite did not reach a fixpoint after {MAX_REWRITES_PER_NODE} steps at {node.op.name}")

    def rebuild(node: Node) -> Node:
        # sources of a freshly built node may themselves be rewritable (a rule may build new subtrees)
        for n in node.toposort(skip=lambda m: id(m) in done):
            keep.append(n)
            src = tuple(done[id(s)] for s in n.src)
            m = n if src == n.src else n.replace(src=src)
            done[id(n)] = res = fixpoint(m)
            if m is not n:
                keep.append(m)
                done.setdefault(id(m), res)
        return done[id(node)]

    return rebuild(root)
