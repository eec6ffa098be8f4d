"""Constant folding: a node whose operands are all constants becomes a constant.

Folding evaluates in float64 with the numpy interpreter and rounds once when the kernel reads the literal, which is
at least as accurate as the f32 arithmetic it replaces. A result that is not finite is left unfolded (it would be a
non-finite literal; the kernel computes it at run time with the same outcome). One rule, which every later
simplification table starts with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import F32, I32, GroupOp, Node, Op, const, evaluate
from .pattern import P
from .rewrite import RuleTable, rewrite


def _all_sources_const(n: Node) -> bool:
    return bool(n.src) and all(s.op is Op.CONST for s in n.src)


def _fold(n: Node) -> Node | None:
    if n.dtype is F32:
        v = float(evaluate(n, np.zeros(()), np.float64))
        return const(v) if math.isfinite(v) else None
    if n.dtype is I32:
        return const(int(evaluate(n, np.zeros(()), np.float32)), I32)
    return None


NON_LEAF = frozenset(Op) - GroupOp.Leaf

RULES = RuleTable([
    ("op(const...) -> const", P(NON_LEAF, name="n", pred=_all_sources_const), lambda n: _fold(n)),
])
FOLD = RULES.rules[0]


def fold_constants(root: Node, trace: list | None = None) -> Node:
    return rewrite(root, RULES, trace)


@dataclass(frozen=True)
class FoldConstants:
    name: str = "fold-constants"

    def run(self, root: Node, ctx) -> Node:
        return fold_constants(root, ctx.trace)
