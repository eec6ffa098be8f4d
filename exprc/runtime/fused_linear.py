"""Fused Linear modules: a Linear with the residual add and the next norm in its epilogue, or a norm in its prologue.

- `FusedLinearExprNorm`: `r = x @ W^T + c (+ residual)`, `y = norm(r)` in one kernel; returns `(r, y)`.
- `FusedExprNormLinear`: `linear(norm(x))` with the norm evaluated on the Linear's input tiles and its affine
  folded into the Linear's weight and bias (see `kernels/matmul_prologue.py`).
- `linear_residual_norm(...)`, `norm_linear(...)`: their functional cores, used by `patch_timm` on a model's own
  modules.

Both run as exprc's operators (`ops.py`). Where the Triton kernel cannot run (a CPU tensor without
TRITON_INTERPRET=1, another dtype, the `torch` backend) the operator runs the generated torch code instead; the
epilogue has a backward (the norm's part in one kernel), the prologue has none, so where autograd records, a
norm + Linear runs unfused. The kernels are those of `exprc/runtime/kernels/`, written once; the norm's generated
expression module is what they run.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from ..ir import Node
from .expr_norm import BACKENDS, ExprNorm
from .kernels.support import is_interpreted

_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


# -- when the kernel runs -------------------------------------------------------------------------------------
def kernel_can_run(expr: ModuleType, backend: str, tensors: tuple[torch.Tensor | None, ...],
                   parameters: tuple[torch.Tensor | None, ...] = (), *, differentiable: bool = True) -> bool:
    """Whether a fused kernel runs with the generated expression module `expr` (else the torch code does).

    `tensors` (activations and the Linear's weight; None for absent ones) must be f32/bf16/f16 of one dtype on one
    device: CUDA, or the CPU when `expr` was imported under TRITON_INTERPRET=1. Vectors (`parameters`: bias,
    scale, the norm's affine) may be of any float dtype. A kernel without a backward (`differentiable=False`: the
    prologue) does not run where autograd needs a graph. The backend must not be `torch`; the `triton` backend
    raises where the kernel cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return False
    x = tensors[0]
    present = [t for t in tensors if t is not None]
    on_device = x.is_cuda or (x.device.type == "cpu" and is_interpreted(expr.expr_fn))
    ok = (on_device and x.dtype in _TRITON_DTYPES and all(t.device == x.device for t in present)
          and all(t.dtype == x.dtype for t in present))
    if ok and not differentiable and torch.is_grad_enabled() and any(
            t.requires_grad for t in (*present, *parameters) if t is not None):
        ok = False  # the prologue kernel has no backward: autograd takes the unfused path
    if backend == "triton" and not ok:
        raise RuntimeError(f"the triton backend cannot run here (tensors {x.dtype} on {x.device}; it needs CUDA "
                           "f32/bf16/f16 tensors of one dtype, or TRITON_INTERPRET=1"
                           + ("" if differentiable else ", and no autograd graph") + ")")
    return ok


def _affine(norm: ExprNorm, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The norm's weight and bias (ones and zeros when it has none), on `like`'s device."""
    n = like.shape[-1]
    w = norm.weight if norm.weight is not None else torch.ones(n, device=like.device)
    b = norm.bias if norm.bias is not None else torch.zeros_like(w)
    return w.to(like.device), b.to(like.device)


# -- Linear + residual + norm (epilogue) ------------------------------------------------------------------------
def linear_residual_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, norm: ExprNorm, *,
                         residual: torch.Tensor | None = None, scale: torch.Tensor | None = None,
                         write_r: bool = True, backend: str = "auto") -> tuple[torch.Tensor | None, torch.Tensor]:
    """(r, y) with r = residual + scale * (x @ weight.T + bias) and y = norm(r): `torch.ops.exprc.
    linear_residual_norm`, one kernel when it can run, differentiable (the norm's backward in one kernel, the
    matmul's by cuBLAS).

    x: [..., K]; weight: [N, K]; bias, scale: [N] or None; residual: [..., N] or None; norm: an ExprNorm over N
    (its expression module runs in the kernel's epilogue). write_r=False: r is not stored (returned as None).
    """
    if isinstance(norm.weight, UninitializedParameter):
        norm._affine(residual if residual is not None else torch.empty(weight.shape[0], device=x.device))
    runs = kernel_can_run(norm.kernel, backend, (x, weight, residual), (bias, scale, norm.weight, norm.bias))
    w, b = _affine(norm, x)
    r, y = torch.ops.exprc.linear_residual_norm(x, weight, bias, scale, residual, w, b, norm.key,
                                                write_r or torch.is_grad_enabled(), runs)
    return (r if write_r else None), y


class FusedLinearExprNorm(nn.Module):
    """A Linear whose output goes through an optional residual add and an ExprNorm, in one kernel.

    `forward(x, residual=None) -> (r, y)`: r = x @ linear.weight.T + linear.bias (+ residual), the residual stream;
    y = norm(r) = f(r) * norm.weight + norm.bias. Parameters: `linear.weight`, `linear.bias`, `norm.weight`,
    `norm.bias`. Build it from scratch, or around existing modules with `from_modules`.
    """

    def __init__(self, in_features: int, out_features: int, expr: str | Node | ModuleType, *, bias: bool = True,
                 mode: str = "auto", backend: str = "auto", device=None, dtype=None):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.norm = ExprNorm(out_features, expr, mode=mode, backend=backend, device=device, dtype=dtype)
        self.backend = backend

    @classmethod
    def from_modules(cls, linear: nn.Linear, norm: ExprNorm, *, backend: str | None = None) -> FusedLinearExprNorm:
        """Wrap an existing Linear and ExprNorm (shared, not copied); the norm's expression runs in the kernel."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.linear = linear
        self.norm = norm
        self.backend = backend or norm.backend
        return self

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return linear_residual_norm(x, self.linear.weight, self.linear.bias, self.norm, residual=residual,
                                    backend=self.backend)

    def extra_repr(self) -> str:
        return f"backend={self.backend}, expression={self.norm.kernel.__name__}"


# -- norm + Linear (prologue) -----------------------------------------------------------------------------------
def fold_norm_affine(weight, bias, norm_weight, norm_bias):
    """(W', b') for a Linear (weight W [N, K], bias c [N] or None) after a norm with affine (w [K], b [K]).

    W' = W * w (each input column scaled), b' = W @ b + c; computed in f32 (f64 for f64 weights) and returned in
    the Linear's dtype. Either norm parameter may be None (no scale / no shift); b' is None only when both c and
    b are None.
    """
    compute = torch.float64 if weight.dtype == torch.float64 else torch.float32
    w32 = weight.to(compute)
    folded_w = w32 * norm_weight.to(compute)[None, :] if norm_weight is not None else w32
    folded_b = None
    if norm_bias is not None:
        folded_b = w32 @ norm_bias.to(compute)
    if bias is not None:
        folded_b = bias.to(compute) if folded_b is None else folded_b + bias.to(compute)
    return folded_w.to(weight.dtype), (folded_b.to(weight.dtype) if folded_b is not None else None)


class FoldedAffine:
    """The folded (W', b') of a norm + Linear pair, cached until one of the four parameters is modified (keyed by
    identity, version counter and storage of each, and the activation dtype)."""

    def __init__(self):
        self._entry: tuple[tuple, torch.Tensor, torch.Tensor | None] | None = None

    def __deepcopy__(self, memo) -> FoldedAffine:
        return FoldedAffine()  # a copy's parameters are other tensors: fold again

    def get(self, norm: ExprNorm, linear: nn.Linear, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        params = (linear.weight, linear.bias, norm.weight, norm.bias)
        if torch.compiler.is_compiling():  # traced: fold in the graph (no storage pointers to key a cache on)
            w, b = fold_norm_affine(*(p.to(x.device) if p is not None else None for p in params))
            return w.to(x.dtype), (b.to(x.dtype) if b is not None else None)
        key = tuple((id(p), p._version, p.data_ptr()) if p is not None else None for p in params) + (x.dtype,)
        if self._entry is None or self._entry[0] != key:
            with torch.no_grad():
                w, b = fold_norm_affine(*(p.to(x.device) if p is not None else None for p in params))
            self._entry = (key, w.to(x.dtype).contiguous(), b.to(x.dtype).contiguous() if b is not None else None)
        return self._entry[1], self._entry[2]


def norm_linear(x: torch.Tensor, norm: ExprNorm, linear: nn.Linear, folded: FoldedAffine, *,
                backend: str = "auto") -> torch.Tensor:
    """linear(norm(x)): `torch.ops.exprc.norm_linear`, one kernel when it can run (f on the Linear's input tiles,
    the norm's affine folded into the Linear's weight and bias, cached in `folded`); where autograd needs a graph,
    the unfused modules (the prologue has no backward)."""
    runs = not isinstance(norm.weight, UninitializedParameter) and kernel_can_run(
        norm.kernel, backend, (x, linear.weight), (linear.bias, norm.weight, norm.bias), differentiable=False)
    if not runs:
        return linear(norm(x))
    weight, bias = folded.get(norm, linear, x)
    return torch.ops.exprc.norm_linear(x, weight, bias, norm.key, True)


class FusedExprNormLinear(nn.Module):
    """`linear(norm(x))` in one kernel: f evaluated on the Linear's input tiles, the norm's affine folded into the
    Linear (`W' = W * diag(w)`, `b' = W @ b + c`, recomputed when a parameter changes). Worth it only for cheap
    expressions (`codegen/planner.py`). Parameters stay those of `norm` and `linear` (state dicts unchanged)."""

    def __init__(self, norm: ExprNorm, linear: nn.Linear, *, backend: str | None = None):
        super().__init__()
        self.norm = norm
        self.linear = linear
        self.backend = backend or norm.backend
        self.folded = FoldedAffine()

    def folded_parameters(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(W', b') in x's dtype and device, cached until a parameter is modified."""
        return self.folded.get(self.norm, self.linear, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return norm_linear(x, self.norm, self.linear, self.folded, backend=self.backend)

    def extra_repr(self) -> str:
        return f"backend={self.backend}, expression={self.norm.kernel.__name__}"
