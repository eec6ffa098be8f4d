"""The shape of an op table (`Inline` leaves, `Stmt` ops) and the walk that turns IR into statements with it.

`triton_ops.TRITON_OPS` and `torch_ops.TORCH_OPS` are tables of this kind; `emit_triton` and `emit_torch` wrap
`emit_statements` into a function definition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..ir import BOOL, Node, Op


class Inline(NamedTuple):
    """A leaf written in place: `render(node, x)` -> operand text (`x` is the name of the input tensor)."""

    render: Callable[[Node, str], str]


class Stmt(NamedTuple):
    """`render(out, args, node)` -> the lines (unindented) that assign the node's value to `out`."""

    render: Callable[[str, tuple[str, ...], Node], list[str]]


def expr(fn: Callable[..., str]) -> Stmt:
    """A Stmt for an op that is one expression of its operands' texts: `out = fn(*args)`."""
    return Stmt(lambda out, args, node: [f"{out} = {fn(*args)}"])


def expr_node(fn: Callable[..., str]) -> Stmt:
    """Like `expr`, for ops whose text also needs the node (its `arg`): `out = fn(*args, node)`."""
    return Stmt(lambda out, args, node: [f"{out} = {fn(*args, node)}"])


def pow_by_squaring(one_like: Callable[[str], str]) -> Stmt:
    """a**n as multiplications: the squares a, a^2, a^4, ... multiplied where n has a 1 bit."""

    def render(out: str, args: tuple[str, ...], node: Node) -> list[str]:
        (a,) = args
        n = int(node.arg)
        if n == 0:
            return [f"{out} = {one_like(a)}"]
        lines: list[str] = []
        square, factors, bit = a, [], 0
        while True:
            if n >> bit & 1:
                factors.append(square)
            if n >> (bit + 1) == 0:
                break
            nxt = f"{out}_sq{2 << bit}"
            lines.append(f"{nxt} = {square} * {square}")
            square, bit = nxt, bit + 1
        lines.append(f"{out} = {' * '.join(factors)}")
        return lines

    return Stmt(render)


def emit_statements(
    root: Node,
    ops: dict[Op, Inline | Stmt],
    tensor_const: Callable[[Node, str], str],
    x: str = "x",
    prefix: str = "tmp",
) -> tuple[list[str], str]:
    """The statements computing `root` from the tensor named `x`, and the text of the result.

    One statement (or a few, for pow and fast/slow branches) per non-leaf node in topological order, named
    `{prefix}0, {prefix}1, ...`; leaves are written in place. `tensor_const(node, x)` writes a constant as a
    tensor shaped like `x`: used for a constant root, for the first operand of an op whose operands are all
    constants (so it computes in f32 tensors, not Python doubles) and for bool constants (conditions).
    """
    lines: list[str] = []
    names: dict[Node, str] = {}
    count = 0
    for node in root.toposort():
        entry = ops[node.op]
        if isinstance(entry, Inline):
            names[node] = entry.render(node, x)
            continue
        args = [names[s] for s in node.src]
        for i, s in enumerate(node.src):
            if s.op is Op.CONST and (s.dtype is BOOL or (i == 0 and all(t.op is Op.CONST for t in node.src))):
                args[i] = tensor_const(s, x)
        out = f"{prefix}{count}"
        count += 1
        lines.extend(entry.render(out, tuple(args), node))
        names[node] = out
    result = tensor_const(root, x) if root.op is Op.CONST else names[root]
    return lines, result
