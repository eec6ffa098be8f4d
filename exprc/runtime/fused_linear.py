"""Fused Linear modules: a Linear with the residual add and the next norm in its epilogue, or a norm in its prologue.

- `FusedLinearExprNorm`: `r = x @ W^T + c (+ residual)`, `y = norm(r)` in one kernel; returns `(r, y)`.
- `FusedExprNormLinear`: `linear(norm(x))` with the norm evaluated on the Linear's input tiles and its affine
  folded into the Linear's weight and bias (see `codegen/matmul_prologue.py`).
- `linear_residual_norm(...)`: the functional core of the first, used by `patch_timm` on a model's own modules.

Where the Triton kernel cannot run (a CPU tensor without TRITON_INTERPRET=1, another dtype, the `torch` backend)
or autograd needs a graph (grad mode on and a tensor requiring grad), the same math runs eagerly: `F.linear`,
the adds, and the `ExprNorm` itself. The kernels are generated per expression into the kernel cache (or taken
from a compiled directory) and imported once.
"""

from __future__ import annotations

import hashlib
import os
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parameter import UninitializedParameter

from ..ir import Node
from .expr_norm import BACKENDS, ExprNorm
from .kernel_module import cache_dir, import_kernel_source

_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# (kernel family, M bucket, N, K, dtype, device) -> triton.Config: the tile shape depends on the GEMM, not on
# the expression, so one autotuning run per shape serves every expression's kernel
_TUNED: dict[tuple, object] = {}


# -- generated modules ----------------------------------------------------------------------------------------
def _lowered(expr: str | Node, mode: str, expr_text: str | None) -> tuple[Node, str]:
    from ..frontend.parse import parse
    from ..ir import print_ir
    from ..passes.pipeline import optimize

    if not isinstance(expr, (str, Node)):
        raise TypeError(f"a fused kernel is generated from expression text or IR, not {type(expr).__name__} (for "
                        "a compiled directory's module, pass its epilogue/prologue module too)")
    root = parse(expr) if isinstance(expr, str) else expr
    if expr_text is None:
        expr_text = expr if isinstance(expr, str) else print_ir(expr).replace("\n", "; ")
    return optimize(root, mode).root, expr_text


def _import_generated(source: str, prefix: str) -> ModuleType:
    data = source.encode()
    path = cache_dir() / f"{prefix}{hashlib.sha256(data).hexdigest()[:24]}.py"
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return import_kernel_source(path, data)


def epilogue_module_for(expr: str | Node, mode: str = "precise", expr_text: str | None = None) -> ModuleType:
    """The fused matmul-epilogue module of `expr` (text or unoptimized IR), generated and imported.
    `expr_text` (default: the text, or the IR printed) goes into the generated file's header."""
    from ..codegen.matmul_epilogue import generate_epilogue_source

    root, text = _lowered(expr, mode, expr_text)
    return _import_generated(generate_epilogue_source(root, expr_text=text, mode=mode), "mm_")


def prologue_module_for(expr: str | Node, mode: str = "precise", expr_text: str | None = None) -> ModuleType:
    """The fused matmul-prologue module of `expr` (text or unoptimized IR), generated and imported."""
    from ..codegen.matmul_prologue import generate_prologue_source

    root, text = _lowered(expr, mode, expr_text)
    return _import_generated(generate_prologue_source(root, expr_text=text, mode=mode), "mmp_")


# -- when the kernel runs -------------------------------------------------------------------------------------
def kernel_can_run(kernel: ModuleType, backend: str, tensors: tuple[torch.Tensor | None, ...],
                   parameters: tuple[torch.Tensor | None, ...] = ()) -> bool:
    """Whether the generated `kernel` runs (else the eager path does).

    `tensors` (activations and the Linear's weight; None for absent ones) must be f32/bf16/f16 of one dtype on one
    device: CUDA, or the CPU when the kernel was imported under TRITON_INTERPRET=1. Vectors (`parameters`: bias,
    scale, the norm's affine) may be of any float dtype. Nothing may need an autograd graph, and the backend must
    not be `torch`; the `triton` backend raises where the kernel cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return False
    x = tensors[0]
    present = [t for t in tensors if t is not None]
    on_device = x.is_cuda or (x.device.type == "cpu" and getattr(kernel, "INTERPRETING", False))
    ok = (on_device and x.dtype in _TRITON_DTYPES and all(t.device == x.device for t in present)
          and all(t.dtype == x.dtype for t in present))
    if ok and torch.is_grad_enabled() and any(t.requires_grad for t in (*present, *parameters) if t is not None):
        ok = False  # the fused kernels have no backward: autograd takes the eager path
    if backend == "triton" and not ok:
        raise RuntimeError(f"the triton backend cannot run here (tensors {x.dtype} on {x.device}; it needs CUDA "
                           "f32/bf16/f16 tensors of one dtype, or TRITON_INTERPRET=1, and no autograd graph)")
    return ok


def _input_precision(x: torch.Tensor) -> str:
    """What tl.dot uses for f32 inputs: TF32 only where torch's own f32 matmuls may use it."""
    if x.dtype == torch.float32 and x.is_cuda and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


def _run_tuned(family: str, kernel: ModuleType, m: int, n: int, k: int, x: torch.Tensor, run) -> None:
    """Launch through `run(config)`, autotuning only the first time a GEMM shape is seen (for any expression)."""
    key = (family, 1 << max(m - 1, 0).bit_length(), n, k, x.dtype, x.device)
    chosen = run(_TUNED.get(key))
    if key not in _TUNED and chosen is not None and not getattr(kernel, "INTERPRETING", False):
        _TUNED[key] = chosen


def _rows(t: torch.Tensor | None, width: int) -> torch.Tensor | None:
    return None if t is None else t.reshape(-1, width).contiguous()


def _vector(t: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.to(x.device).contiguous()


# -- Linear + residual + norm (epilogue) ------------------------------------------------------------------------
def linear_residual_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, norm: ExprNorm,
                         epilogue: ModuleType, *, residual: torch.Tensor | None = None,
                         scale: torch.Tensor | None = None, write_r: bool = True,
                         backend: str = "auto") -> tuple[torch.Tensor | None, torch.Tensor]:
    """(r, y) with r = residual + scale * (x @ weight.T + bias) and y = norm(r), in one kernel when it can run.

    x: [..., K]; weight: [N, K]; bias, scale: [N] or None; residual: [..., N] or None; norm: an ExprNorm over N
    whose expression `epilogue` (the module from `epilogue_module_for` or a compiled directory) computes.
    write_r=False: r is not stored (returned as None).
    """
    runs = not isinstance(norm.weight, UninitializedParameter) and kernel_can_run(
        epilogue, backend, (x, weight, residual), (bias, scale, norm.weight, norm.bias))
    if not runs:
        r = F.linear(x, weight, bias)
        if scale is not None:
            r = r * scale
        if residual is not None:
            r = residual + r
        return (r if write_r else None), norm(r)
    n, k = weight.shape
    a = _rows(x, k)
    m = a.shape[0]
    y = torch.empty((m, n), device=x.device, dtype=x.dtype)
    r = torch.empty_like(y) if write_r else None
    if m:
        args = (a, weight.contiguous(), _vector(bias, x), _vector(scale, x), _rows(residual, n),
                _vector(norm.weight, x), _vector(norm.bias, x), r, y)
        precision = _input_precision(x)
        _run_tuned("epilogue", epilogue, m, n, k, x,
                   lambda config: epilogue.launch(*args, input_precision=precision, config=config))
    shape = (*x.shape[:-1], n)
    return (r.view(shape) if r is not None else None), y.view(shape)


class FusedLinearExprNorm(nn.Module):
    """A Linear whose output goes through an optional residual add and an ExprNorm, in one kernel.

    `forward(x, residual=None) -> (r, y)`: r = x @ linear.weight.T + linear.bias (+ residual), the residual stream;
    y = norm(r) = f(r) * norm.weight + norm.bias. Parameters: `linear.weight`, `linear.bias`, `norm.weight`,
    `norm.bias`. Build it from scratch, or around existing modules with `from_modules`.
    """

    def __init__(self, in_features: int, out_features: int, expr: str | Node, *, bias: bool = True,
                 mode: str = "precise", backend: str = "auto", device=None, dtype=None,
                 epilogue: ModuleType | None = None):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.norm = ExprNorm(out_features, expr, mode=mode, backend=backend, device=device, dtype=dtype)
        self.epilogue = epilogue if epilogue is not None else epilogue_module_for(expr, mode)
        self.backend = backend

    @classmethod
    def from_modules(cls, linear: nn.Linear, norm: ExprNorm, expr: str | Node | None = None, *,
                     mode: str | None = None, backend: str | None = None,
                     epilogue: ModuleType | None = None) -> "FusedLinearExprNorm":
        """Wrap an existing Linear and ExprNorm (shared, not copied). The epilogue kernel is `epilogue`, or
        generated from `expr` (default: the norm's expression text) in the norm's mode."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.linear = linear
        self.norm = norm
        mode = mode or norm.mode
        self.epilogue = epilogue if epilogue is not None else epilogue_module_for(
            expr if expr is not None else norm.expr_text, mode)
        self.backend = backend or norm.backend
        return self

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return linear_residual_norm(x, self.linear.weight, self.linear.bias, self.norm, self.epilogue,
                                    residual=residual, backend=self.backend)

    def extra_repr(self) -> str:
        return f"backend={self.backend}, kernel={self.epilogue.__name__}"


# -- norm + Linear (prologue) -----------------------------------------------------------------------------------
class FusedExprNormLinear(nn.Module):
    """`linear(norm(x))` in one kernel: f evaluated on the Linear's input tiles, the norm's affine folded into the
    Linear (`W' = W * diag(w)`, `b' = W @ b + c`, recomputed when a parameter changes). Worth it only for cheap
    expressions (`codegen/planner.py`). Parameters stay those of `norm` and `linear` (state dicts unchanged)."""

    def __init__(self, norm: ExprNorm, linear: nn.Linear, expr: str | Node | None = None, *,
                 backend: str | None = None, prologue: ModuleType | None = None):
        super().__init__()
        self.norm = norm
        self.linear = linear
        self.prologue = prologue if prologue is not None else prologue_module_for(
            expr if expr is not None else norm.expr_text, norm.mode)
        self.backend = backend or norm.backend
        self._folded: tuple[tuple, torch.Tensor, torch.Tensor | None] | None = None

    def folded_parameters(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(W', b') in x's dtype and device, cached until a parameter is modified."""
        from ..codegen.matmul_prologue import fold_norm_affine

        params = (self.linear.weight, self.linear.bias, self.norm.weight, self.norm.bias)
        key = tuple((id(p), p._version, p.data_ptr()) if p is not None else None for p in params) + (x.dtype,)
        if self._folded is None or self._folded[0] != key:
            with torch.no_grad():
                w, b = fold_norm_affine(*(p.to(x.device) if p is not None else None for p in params))
            self._folded = (key, w.to(x.dtype).contiguous(), b.to(x.dtype).contiguous() if b is not None else None)
        return self._folded[1], self._folded[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        runs = not isinstance(self.norm.weight, UninitializedParameter) and kernel_can_run(
            self.prologue, self.backend, (x, self.linear.weight),
            (self.linear.bias, self.norm.weight, self.norm.bias))
        if not runs:
            return self.linear(self.norm(x))
        weight, bias = self.folded_parameters(x)
        n, k = weight.shape
        a = _rows(x, k)
        m = a.shape[0]
        out = torch.empty((m, n), device=x.device, dtype=x.dtype)
        if m:
            precision = _input_precision(x)
            _run_tuned("prologue", self.prologue, m, n, k, x,
                       lambda config: self.prologue.launch(a, weight, bias, out, input_precision=precision,
                                                           config=config))
        return out.view(*x.shape[:-1], n)

    def extra_repr(self) -> str:
        return f"backend={self.backend}, kernel={self.prologue.__name__}"
