"""`KernelRef`: how an nn.Module holds a generated expression module.

Deep copies share the module; pickles carry its source and import it again (`kernels.support.import_source`, in
the Triton mode of the process that loads them) — unpickling a model runs generated code, as loading a kernel
directory does (see `exprc.load`).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from .kernels.support import import_source


class KernelRef:
    def __init__(self, module: ModuleType):
        from .ops import register

        self.module = module
        self.key = register(module)  # what the torch.ops.exprc operators are called with

    def __deepcopy__(self, memo) -> KernelRef:
        return self

    def __reduce__(self):
        return (_reimport, (self.module.__file__, self.module.__exprc_source__))


def _reimport(filename: str, data: bytes) -> KernelRef:
    return KernelRef(import_source(Path(filename), data))


def check_expression_module(module: ModuleType) -> ModuleType:
    """`module` if it is a generated expression module (`expr_fn`, `expr_torch`), else TypeError."""
    if not all(hasattr(module, a) for a in ("expr_fn", "expr_torch")):
        raise TypeError(f"module {getattr(module, '__name__', module)} is not a generated expression module "
                        "(no expr_fn/expr_torch)")
    return module
