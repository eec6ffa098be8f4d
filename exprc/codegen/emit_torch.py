"""IR -> the Python source of an eager PyTorch function computing the expression element-wise in float32.

    def expr_torch(x):
        tmp0 = torch.clamp(x, min=-5.0, max=5.0)
        tmp1 = 2.11 * tmp0
        ...
        return tmp4

The torch backend (CPU, or any device without Triton) and the reference for the Triton path on a GPU. `x` must
be a float32 tensor; the module holding the function imports `math` and `torch`.
"""

from __future__ import annotations

from ..ir import F32, Node
from .op_table import emit_statements
from .source_lines import wrap_lines
from .torch_ops import TORCH_OPS, tensor_const

INDENT = "    "


def emit_torch_function(root: Node, name: str = "expr_torch") -> str:
    """Python source of `def {name}(x)` returning f(x) for a float32 tensor `x`."""
    if root.dtype is not F32:
        raise ValueError(f"an expression must produce f32, got {root.dtype.value}")
    lines, result = emit_statements(root, TORCH_OPS, tensor_const)
    body = [INDENT + line for line in lines] + [f"{INDENT}return {result}"]
    return wrap_lines("\n".join([f"def {name}(x):", *body])) + "\n"
