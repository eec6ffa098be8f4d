"""The small typed IR: ops, dtypes, hash-consed nodes, text form, verifier and numpy interpreter."""

from .dtypes import BOOL, F32, I32, DType
from .interpret import evaluate
from .node import Node, as_node, clip, const, count_nodes, inside, unary, var
from .ops import GroupOp, Op
from .printer import print_ir
from .text_parser import parse_ir
from .verify import MAX_POW, verify

__all__ = [
    "BOOL", "F32", "I32", "DType", "GroupOp", "MAX_POW", "Node", "Op", "as_node", "clip", "const", "count_nodes",
    "evaluate", "inside", "parse_ir", "print_ir", "unary", "var", "verify",
]
