"""Exp sharing: exps of the same argument up to a constant shift become one exp times constants.

`tanh(x) + tanh(x + 0.27)` lowers to exp(2x) and exp(2x + 0.54); both are `exp(s*a + c)` with the same `s*a`, so
the one with the largest c is computed and the other is it times exp(c - c_max) (a folded constant <= 1, so no
new overflow). Hash-consing already shares identical exps; this pass shares shifted ones.

Not a pattern table: which exp a node becomes depends on every other exp of the graph (the group of its base and
that group's largest shift), not on the node's own shape. So the pass first groups the exps of the whole graph,
then rewrites with one rule that looks each exp up in the replacements it computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import F32, Node, Op, const
from .pattern import P
from .rewrite import Fired, Rule, rewrite


def decompose(arg: Node) -> tuple[Node, float, float]:
    """arg == s*base + c, with s and c constants and base not of that form."""
    c = 0.0
    if arg.op is Op.ADD and arg.src[1].op is Op.CONST and arg.dtype is F32:
        arg, c = arg.src[0], arg.src[1].arg
    if arg.op is Op.MUL and arg.src[0].op is Op.CONST:
        return arg.src[1], arg.src[0].arg, c
    if arg.op is Op.NEG:
        return arg.src[0], -1.0, c
    return arg, 1.0, c


SHARED = "exp(s*a + c) -> exp(s*a + c_max) * exp(c - c_max)"


def share_exp(root: Node, trace: list[Fired] | None = None) -> Node:
    groups: dict[tuple[int, float], list[tuple[Node, float]]] = {}
    for n in root.toposort():
        if n.op is Op.EXP:
            base, s, c = decompose(n.src[0])
            groups.setdefault((id(base), s), []).append((n, c))
    replace: dict[int, Node] = {}
    for members in groups.values():
        if len({c for _, c in members}) < 2:
            continue
        top, c_max = max(members, key=lambda m: m[1])
        for node, c in members:
            factor = math.exp(c - c_max)
            if node is not top and factor > 0:
                replace[id(node)] = const(factor) * top
    if not replace:
        return root
    return rewrite(root, [Rule.of(SHARED, P(Op.EXP, name="n"), lambda n: replace.get(id(n)))], trace)


@dataclass(frozen=True)
class ShareExp:
    name: str = "share-exp"

    def run(self, root: Node, ctx) -> Node:
        return share_exp(root, ctx.trace)
