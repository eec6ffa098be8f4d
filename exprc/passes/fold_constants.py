"""Constant folding: a node whose operands are all constants becomes a constant.

Folding evaluates in float64 with the numpy interpreter and rounds once when the kernel reads the literal, which is
at least as accurate as the f32 arithmetic it replaces. A result that is not finite is left unfolded (it would be a
non-finite literal; the kernel computes it at run time with the same outcome).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import F32, I32, Node, Op, const, evaluate
from .rewrite import Rule


def _fold(node: Node) -> Node | None:
    if node.op in (Op.CONST, Op.INPUT) or not node.src or not all(s.is_const for s in node.src):
        return None
    if node.dtype is F32:
        v = float(evaluate(node, np.zeros(()), np.float64))
        return const(v) if math.isfinite(v) else None
    if node.dtype is I32:
        return const(int(evaluate(node, np.zeros(()), np.float32)), I32)
    return None


FOLD = Rule("op(const...) -> const", _fold, "fold_constants.py")


def fold_constants(root: Node) -> Node:
    from .rewrite import rewrite

    return rewrite(root, [FOLD])


@dataclass(frozen=True)
class FoldConstants:
    name: str = "fold-constants"

    def run(self, root: Node, ctx) -> Node:
        from .rewrite import rewrite

        return rewrite(root, [FOLD], ctx.trace)
