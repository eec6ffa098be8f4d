"""IR -> the Python source of a `@triton.jit` function computing the expression element-wise.

    @triton.jit
    def expr_fn(x, FAST_ASM: tl.constexpr):
        tmp0 = tl.where(x < -5.0, -5.0, tl.where(x > 5.0, 5.0, x))
        tmp1 = 2.11 * tmp0
        ...
        return tmp4

One statement per IR node in topological order, temporaries `tmp0, tmp1, ...`, constants inlined as f32
literals, every op written by the table in `triton_ops.py`. `x` is an f32 tensor of any shape (a 1-D block in
the element-wise kernel, a 2-D tile in the matmul epilogue); the result is an f32 tensor of the same shape.
The module that holds the function imports `triton`, `triton.language as tl` and, when the code calls it,
`libdevice` (see `expr_module.py`).
"""

from __future__ import annotations

from ..ir import BOOL, F32, I32, Node
from .op_table import emit_statements
from .source_lines import wrap_lines
from .triton_ops import TRITON_OPS, f32_from_bits, f32_literal

INDENT = "    "


def tensor_const(node: Node, x: str) -> str:
    """A constant as an f32/i32/bool tensor shaped like `x`."""
    if node.dtype is F32:
        literal = f32_literal(node.arg)
        return f"tl.full({x}.shape, {literal}, tl.float32)" if literal else f32_from_bits(node.arg, x)
    if node.dtype is I32:
        return f"tl.full({x}.shape, {int(node.arg)}, tl.int32)"
    assert node.dtype is BOOL
    return f"tl.full({x}.shape, {bool(node.arg)}, tl.int1)"


def emit_expr_function(root: Node, name: str = "expr_fn") -> str:
    """Python source of `@triton.jit def {name}(x, FAST_ASM: tl.constexpr)` returning f(x) as f32."""
    if root.dtype is not F32:
        raise ValueError(f"an expression must produce f32, got {root.dtype.value}")
    lines, result = emit_statements(root, TRITON_OPS, tensor_const)
    body = [INDENT + line for line in lines] + [f"{INDENT}return {result}"]
    return wrap_lines("\n".join(["@triton.jit", f"def {name}(x, FAST_ASM: tl.constexpr):", *body])) + "\n"
