"""The kernels, written once: element-wise forward and backward, matmul epilogue and matmul prologue (one module
each).

Each kernel takes the expression as a `tl.constexpr` argument `F` holding the `@triton.jit` function of a
generated expression module (`F(x, FAST_ASM)` on an f32 tensor of any shape), so every expression shares one
reviewed kernel. A family is imported once per Triton mode, the mode of the expression module it runs:
`family("elementwise", interpreted)`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from .support import import_source

FAMILIES = ("elementwise", "elementwise_backward", "matmul_epilogue", "matmul_epilogue_tma", "matmul_prologue")


def family(name: str, interpreted: bool) -> ModuleType:
    """The kernel module `name` (one of FAMILIES) imported in Triton's interpreted or compiled mode."""
    if name not in FAMILIES:
        raise ValueError(f"unknown kernel family {name!r}: expected one of {FAMILIES}")
    path = Path(__file__).with_name(f"{name}.py")
    return import_source(path, path.read_bytes(), interpreted)


def family_for(name: str, expr_module: ModuleType) -> ModuleType:
    """The kernel module `name` in the Triton mode of the generated expression module `expr_module`."""
    from .support import is_interpreted

    return family(name, is_interpreted(expr_module.expr_fn))
