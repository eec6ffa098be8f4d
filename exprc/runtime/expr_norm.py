"""`ExprNorm`: a drop-in for `nn.LayerNorm` computing `y = f(x) * weight + bias` element-wise.

Parameters are named as in `nn.LayerNorm` (`weight` ones, `bias` zeros, of shape `normalized_shape`), so a
LayerNorm's state dict loads into it. f is given as expression text or IR (compiled by `exprc.compiler`), or as
a generated expression module (what `exprc.load` passes). Backends: `triton` (the element-wise kernel of
`kernels/elementwise.py`: CUDA tensors, or CPU tensors when the module was imported under TRITON_INTERPRET=1),
`torch` (the generated eager code, any device; float64 in, float64 computed), `auto` (triton where it can run
and the dtype is f32/bf16/f16, else torch). Both run as the operator `torch.ops.exprc.expr_norm` (see `ops.py`),
whose backward is the generated derivative: one backward kernel plus one reduction on the Triton path.

`normalized_shape=None` makes the parameters lazy: they take their shape from the first loaded state dict or,
failing that, from the last dimension of the first input.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from ..ir import Node, print_ir
from .kernel_module import KernelRef, check_expression_module
from .kernels.support import is_interpreted

BACKENDS = ("auto", "triton", "torch")
_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def eager_norm(expr: ModuleType, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """y = f(x) * weight + bias by the expression's eager torch code, on any device. Computed in float64 for a
    float64 x (so `torch.autograd.gradcheck` works), else in float32; returned in x's dtype."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = expr.expr_torch(x.to(compute)) * weight.to(compute) + bias.to(compute)
    return y.to(x.dtype)


def _expression_module(expr: str | Node | ModuleType, mode: str) -> tuple[ModuleType, str]:
    """The generated module for `expr`, and a text to show for it."""
    if isinstance(expr, ModuleType):
        return check_expression_module(expr), getattr(expr, "__name__", "kernel")
    from ..compiler import compile_expr, expression_module

    if not isinstance(expr, (str, Node)):
        raise TypeError(f"expr must be expression text, an IR Node or a generated expression module, not "
                        f"{type(expr).__name__}")
    compiled = compile_expr(expr, mode)
    text = expr if isinstance(expr, str) else print_ir(expr).replace("\n", "; ")
    return expression_module(compiled), text


class ExprNorm(nn.Module):
    """y = f(x) * weight + bias over the last dimension(s) of x, f an element-wise expression."""

    def __init__(self, normalized_shape: int | tuple[int, ...] | torch.Size | None, expr: str | Node | ModuleType,
                 *, mode: str = "auto", backend: str = "auto", elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None, expr_text: str | None = None):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        kernel, text = _expression_module(expr, mode)
        self._kernel = KernelRef(kernel)
        self.expr_text = expr_text if expr_text is not None else text
        self.mode = getattr(self.kernel, "MODE", mode)
        self.backend = backend
        self.elementwise_affine = elementwise_affine
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape) if normalized_shape is not None else None
        factory = {"device": device, "dtype": dtype}
        if not elementwise_affine:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        elif self.normalized_shape is None:
            self.weight = UninitializedParameter(**factory)
            self.bias = UninitializedParameter(**factory) if bias else None
        else:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape, **factory))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape, **factory)) if bias else None

    @property
    def kernel(self) -> ModuleType:
        """The generated expression module (`expr_fn`, `expr_torch`, `MODE`)."""
        return self._kernel.module

    @classmethod
    def from_layernorm(cls, ln: nn.LayerNorm, expr: str | Node | ModuleType, *, mode: str = "auto",
                       backend: str = "auto") -> ExprNorm:
        """An ExprNorm with `ln`'s shape and a copy of its affine parameters (`eps` has no use here)."""
        ref = ln.weight
        m = cls(tuple(ln.normalized_shape), expr, mode=mode, backend=backend,
                elementwise_affine=ln.elementwise_affine, bias=getattr(ln, "bias", None) is not None,
                device=ref.device if ref is not None else None, dtype=ref.dtype if ref is not None else None)
        with torch.no_grad():
            if ln.weight is not None:
                m.weight.copy_(ln.weight)
            if getattr(ln, "bias", None) is not None:
                m.bias.copy_(ln.bias)
        return m

    # -- lazy parameters ----------------------------------------------------------------------------
    def _materialize(self, shape: tuple[int, ...], device=None) -> None:
        self.normalized_shape = tuple(shape)
        with torch.no_grad():
            for p, fill in ((self.weight, 1.0), (self.bias, 0.0)):
                if isinstance(p, UninitializedParameter):
                    p.materialize(shape, device=device)
                    p.fill_(fill)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.normalized_shape is None:
            for key in ("weight", "bias"):
                if isinstance(getattr(self, key), UninitializedParameter) and prefix + key in state_dict:
                    self._materialize(tuple(state_dict[prefix + key].shape))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- forward ------------------------------------------------------------------------------------
    def _affine(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.normalized_shape is None:
            if not self.elementwise_affine:
                shape = tuple(x.shape[-1:])
                return x.new_ones(shape, dtype=torch.float32), x.new_zeros(shape, dtype=torch.float32)
            self._materialize(tuple(x.shape[-1:]), device=x.device)
        shape = self.normalized_shape
        if tuple(x.shape[x.dim() - len(shape):]) != shape:
            raise ValueError(f"ExprNorm over {shape} got an input of shape {tuple(x.shape)}")
        w = self.weight if self.weight is not None else x.new_ones(shape, dtype=torch.float32)
        b = self.bias if self.bias is not None else torch.zeros_like(w)
        return w, b

    def uses_triton(self, x: torch.Tensor) -> bool:
        """Whether forward(x) runs the Triton kernel."""
        if self.backend == "torch":
            return False
        can = (x.is_cuda or (x.device.type == "cpu" and is_interpreted(self.kernel.expr_fn))) and \
            x.dtype in _TRITON_DTYPES
        if self.backend == "triton" and not can:
            raise RuntimeError(f"the triton backend cannot run on a {x.dtype} tensor on {x.device} (it needs a CUDA "
                               "f32/bf16/f16 tensor, or TRITON_INTERPRET=1 when the kernel was imported)")
        return can

    @property
    def key(self) -> str:
        """The name of the expression module: what `torch.ops.exprc.expr_norm` is called with."""
        return self._kernel.key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self._affine(x)
        return torch.ops.exprc.expr_norm(x, w, b, self.key, self.uses_triton(x))

    def extra_repr(self) -> str:
        shape = "lazy" if self.normalized_shape is None else self.normalized_shape
        text = self.expr_text if len(self.expr_text) <= 80 else self.expr_text[:77] + "..."
        return (f"{shape}, expr={text!r}, mode={self.mode}, backend={self.backend}, "
                f"elementwise_affine={self.elementwise_affine}")
