"""exprc's PyTorch operators: `torch.ops.exprc.*`, registered when `exprc.runtime` is first used.

    expr_norm(x, weight, bias, key, use_triton) -> y                         y = f(x) * weight + bias
    expr_norm_backward(dy, x, weight, dr, key, use_triton) -> (dx, dw, db)   dx = dy * weight * f'(x) (+ dr)
    linear_residual_norm(a, W, bias, scale, residual, w, b, key, write_r, use_triton) -> (r, y)
    norm_linear(x, W', b', key, use_triton) -> out                           f(x) @ W'^T + b' (affine folded)

`key` names a generated expression module (`e_<hash>`, see `exprc.compiler`); the operator finds it in this
process's registry (filled as modules are imported, including by unpickling a model) or in the kernel cache.
With `use_triton` the body runs the kernels of `runtime/kernels/` through `torch.library.wrap_triton` (on CUDA,
or on the CPU under Triton's interpreter); without it, the generated torch code — so on the CPU the torch branch
is what `torch.compile`, `torch.export` and `opcheck` exercise. Each operator is a `torch.library.triton_op`: its
body is its fake implementation, and `register_autograd` gives expr_norm and linear_residual_norm their backward
(one backward kernel per norm plus one reduction of its partial sums; the matmul gradients by cuBLAS).
norm_linear (a prologue placement) has no backward: while a model trains, prologue placements run unfused.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch.library import triton_op

from ..errors import ExprcError
from .expr_norm import eager_norm
from .kernels import family_for
from .kernels.support import for_storage, import_source

_MODULES: dict[tuple[str, bool], ModuleType] = {}


# -- the registry of expression modules ---------------------------------------------------------------------------
def key_of(module: ModuleType) -> str:
    return Path(module.__file__).stem


def register(module: ModuleType) -> str:
    """Make the generated expression `module` known to the operators; returns its key."""
    from .kernels.support import is_interpreted

    key = key_of(module)
    _MODULES.setdefault((key, is_interpreted(module.expr_fn)), module)
    return key


def expression(key: str, interpreted: bool | None = None) -> ModuleType:
    """The expression module `key` in Triton's compiled or interpreted mode (None: either): from the registry,
    imported again from its own source in the other mode if needed, else from the kernel cache."""
    for mode in ((interpreted,) if interpreted is not None else (False, True)):
        if (key, mode) in _MODULES:
            return _MODULES[key, mode]
    other = _MODULES.get((key, not interpreted))
    if other is not None:
        path, data = Path(other.__file__), other.__exprc_source__
    else:
        from ..compiler import cache_dir

        path = cache_dir() / f"{key}.py"
        if not path.is_file():
            raise ExprcError(f"no generated module {key} in this process or in the kernel cache {cache_dir()}: "
                             "load its kernels directory (exprc.load) or compile its expression first")
        data = path.read_bytes()
    module = import_source(path, data, bool(interpreted))
    _MODULES[key, bool(interpreted)] = module
    return module


def _module(key: str, x: torch.Tensor, use_triton: bool) -> ModuleType:
    """The module a call runs: Triton's interpreted mode for CPU tensors, compiled for CUDA, with the forward
    function of x's storage dtype (auto mode: `expr_fn_bf16` for a bf16 x, ...); any for torch code (which
    computes in f32 or f64)."""
    if use_triton:
        return for_storage(expression(key, not x.is_cuda), str(x.dtype).removeprefix("torch."))
    return expression(key, None)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _on(x: torch.Tensor):
    """Launch under the tensor's own device (Triton launches on the current CUDA device)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _rows(t: torch.Tensor, width: int) -> torch.Tensor:
    return t.reshape(-1, width).contiguous()


def _programs(x: torch.Tensor) -> int:
    """Programs of the backward kernel: the SM count on a GPU (a fixed number, so the reduction order is fixed)."""
    if x.is_cuda:
        return torch.cuda.get_device_properties(x.device).multi_processor_count
    return 4


# -- element-wise ---------------------------------------------------------------------------------------------------
@triton_op("exprc::expr_norm", mutates_args=())
def expr_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, key: str, use_triton: bool) -> torch.Tensor:
    expr = _module(key, x, use_triton)
    if use_triton:
        with _on(x):
            return family_for("elementwise", expr).apply(expr, x, weight.to(x.device), bias.to(x.device))
    return eager_norm(expr, x, weight, bias)


@triton_op("exprc::expr_norm_backward", mutates_args=())
def expr_norm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, dr: torch.Tensor | None, key: str,
                       use_triton: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dw, db) of y = f(x) * weight + bias for the output gradient dy; dr, if given, is added to dx (the
    residual stream's own gradient, in a fused block). dw and db have weight's shape and dtype."""
    expr = _module(key, x, use_triton)
    d = weight.numel()
    if use_triton:
        with _on(x):
            dx, partial = family_for("elementwise_backward", expr).launch(
                expr, _rows(x, d), _rows(dy.to(x.dtype), d), weight.reshape(-1).contiguous(),
                _rows(dr.to(x.dtype), d) if dr is not None else None, _programs(x))
        sums = partial.sum(0)  # the one reduction of the partial sums: [2, D]
        # two outputs of one storage would alias each other: dw and db are copied out (D elements each)
        dw, db = (sums[i].view(weight.shape).to(weight.dtype, copy=True) for i in (0, 1))
        return dx.view(x.shape), dw, db
    c = _compute_dtype(x)
    xc, dyc = x.to(c), dy.to(c)
    dx = dyc * weight.to(c) * expr.expr_grad_torch(xc)
    if dr is not None:
        dx = dx + dr.to(c)
    lead = tuple(range(x.dim() - weight.dim()))
    dw = (dyc * expr.expr_torch(xc)).sum(lead) if lead else dyc * expr.expr_torch(xc)
    db = dyc.sum(lead) if lead else dyc.clone()
    return dx.to(x.dtype), dw.to(weight.dtype), db.to(weight.dtype)


def _expr_norm_setup(ctx, inputs, output) -> None:
    x, weight, _, key, use_triton = inputs
    ctx.save_for_backward(x, weight)
    ctx.key, ctx.use_triton = key, use_triton


def _expr_norm_grad(ctx, dy):
    x, weight = ctx.saved_tensors
    dx, dw, db = torch.ops.exprc.expr_norm_backward(dy, x, weight, None, ctx.key, ctx.use_triton)
    return dx, dw, db, None, None


expr_norm.register_autograd(_expr_norm_grad, setup_context=_expr_norm_setup)


# -- Linear + residual + norm (matmul epilogue) ---------------------------------------------------------------------
@triton_op("exprc::linear_residual_norm", mutates_args=())
def linear_residual_norm(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         scale: torch.Tensor | None, residual: torch.Tensor | None, norm_weight: torch.Tensor,
                         norm_bias: torch.Tensor, key: str, write_r: bool,
                         use_triton: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """r = residual + scale * (a @ weight.T + bias) and y = f(r) * norm_weight + norm_bias; with use_triton in
    one kernel. a: [..., K]; weight: [N, K]; r, y: [..., N]. write_r=False: r is not stored (an empty tensor)."""
    n, k = weight.shape
    shape = (*a.shape[:-1], n)
    m = a.numel() // k if k else 0
    # the unfused path: the generated torch code, or (small M on a GPU, where the fused kernel's tiles would leave
    # SMs idle) cuBLAS and the element-wise kernel
    if not use_triton or (a.is_cuda and m and not fills_gpu("matmul_epilogue", m, n, a)):
        r = F.linear(a, weight, bias)
        if scale is not None:
            r = r * scale
        if residual is not None:
            r = residual + r
        y = torch.ops.exprc.expr_norm(r, norm_weight, norm_bias, key, use_triton)
        return (r if write_r else r.new_empty(0)), y
    expr = _module(key, a, use_triton)
    rows = _rows(a, k)
    m = rows.shape[0]
    y = torch.empty((m, n), device=a.device, dtype=a.dtype)
    r = torch.empty_like(y) if write_r else y.new_empty(0)
    if m:
        vec = [t.to(a.device).contiguous() if t is not None else None
               for t in (bias, scale, norm_weight, norm_bias)]
        w = weight.contiguous()
        args = (rows, w, vec[0], vec[1], _rows(residual, n) if residual is not None else None, vec[2], vec[3],
                r if write_r else None, y)
        tile = tma_tile(rows, w, m, n, k)
        ran = None
        if tile is not None:  # sm_90: the TMA + persistent variant, unless its kernel spills for this expression
            with _on(a):
                ran = family_for("matmul_epilogue_tma", expr).launch(
                    expr, *args, input_precision=_precision(a), config=tile, sm_count=device_limits(a)[0],
                    spill_free=True)
        if ran is None:
            _launch_tuned("matmul_epilogue", expr, m, n, k, a, *args)
    return (r.view(shape) if write_r else r), y.view(shape)


def _lrn_setup(ctx, inputs, output) -> None:
    a, weight, bias, scale, residual, norm_weight, norm_bias, key, write_r, use_triton = inputs
    r, _ = output
    if not write_r:
        raise RuntimeError("exprc::linear_residual_norm with write_r=False has no backward: write r to train")
    ctx.save_for_backward(a, weight, bias, scale, r, norm_weight)
    ctx.key, ctx.use_triton = key, use_triton
    ctx.has = (bias is not None, scale is not None, residual is not None)


def _lrn_grad(ctx, dr_out, dy):
    """The norm's part in one kernel (dr = dr_out + dy * w * f'(r), dw, db), the matmul's by cuBLAS."""
    a, weight, bias, scale, r, norm_weight = ctx.saved_tensors
    has_bias, has_scale, has_residual = ctx.has
    dr, dw_norm, db_norm = torch.ops.exprc.expr_norm_backward(dy, r, norm_weight, dr_out, ctx.key, ctx.use_triton)
    n, k = weight.shape
    branch_grad = dr * scale if has_scale else dr
    g2, a2 = branch_grad.reshape(-1, n), a.reshape(-1, k)
    da = (g2 @ weight.to(g2.dtype)).view(a.shape).to(a.dtype)
    dweight = (g2.T @ a2.to(g2.dtype)).to(weight.dtype)
    dbias = g2.sum(0).to(bias.dtype) if has_bias else None
    dscale = None
    if has_scale:
        branch = F.linear(a, weight, bias)  # recomputed (cuBLAS) rather than saved
        dscale = (dr * branch).reshape(-1, n).sum(0).to(scale.dtype)
    dres = dr if has_residual else None
    return da, dweight, dbias, dscale, dres, dw_norm, db_norm, None, None, None


linear_residual_norm.register_autograd(_lrn_grad, setup_context=_lrn_setup)


# -- norm + Linear (matmul prologue) --------------------------------------------------------------------------------
@triton_op("exprc::norm_linear", mutates_args=())
def norm_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, key: str,
                use_triton: bool) -> torch.Tensor:
    """f(x) @ weight.T + bias, with the norm's affine already folded into weight and bias; with use_triton the
    matmul-prologue kernel evaluates f on the input tiles."""
    n, k = weight.shape
    expr = _module(key, x, use_triton)
    if not use_triton:
        c = _compute_dtype(x)
        return F.linear(expr.expr_torch(x.to(c)).to(x.dtype), weight, bias)
    if not prologue_fits_module(expr):  # too costly for the prologue kernel: f by the element-wise kernel, then cuBLAS
        ones = torch.ones(k, device=x.device, dtype=x.dtype)
        return F.linear(torch.ops.exprc.expr_norm(x, ones, torch.zeros_like(ones), key, True), weight, bias)
    rows = _rows(x, k)
    m = rows.shape[0]
    out = torch.empty((m, n), device=x.device, dtype=x.dtype)
    if m:
        _launch_tuned("matmul_prologue", expr, m, n, k, x, rows, weight.contiguous(),
                      bias.to(x.device).contiguous() if bias is not None else None, out)
    return out.view(*x.shape[:-1], n)


_PROLOGUE_FITS: dict[str, bool] = {}


def prologue_fits_module(expr: ModuleType) -> bool:
    """Whether the expression module's f may run in the prologue kernel (`planner.prologue_fits`, from its IR)."""
    key = key_of(expr)
    if key not in _PROLOGUE_FITS:
        from ..codegen.planner import prologue_fits
        from ..ir import parse_ir
        from ..passes.auto_lowering import element_cost

        _PROLOGUE_FITS[key] = prologue_fits(element_cost(parse_ir(expr.IR.replace("; ", "\n")), "precise"))
    return _PROLOGUE_FITS[key]


# -- tile configurations --------------------------------------------------------------------------------------------
# The first call of a fused kernel takes its tile from `tiles.default_tile` (no autotuning inside a forward);
# EXPRC_AUTOTUNE=1 autotunes instead, once per GEMM shape: (family, M bucket, N, K, dtype, device) -> the
# triton.Config it chose (the tile depends on the GEMM, not on the expression, so one run serves every expression)
_TUNED: dict[tuple, object] = {}


def autotune_requested() -> bool:
    return os.environ.get("EXPRC_AUTOTUNE", "0").lower() in ("1", "true", "yes", "on")


def device_limits(x: torch.Tensor) -> tuple[int, int]:
    """(SM count, shared memory bytes per block) of x's GPU."""
    from .kernels.tiles import max_shared_memory

    index = x.device.index if x.device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_properties(index).multi_processor_count, max_shared_memory(index)


def fills_gpu(family: str, m: int, n: int, x: torch.Tensor) -> bool:
    """Whether the fused kernel's default tiles give every SM of x's GPU a program (`tiles.fills_device`)."""
    from .kernels import tiles

    configs = tiles.MATMUL_CONFIGS if family == "matmul_epilogue" else tiles.PROLOGUE_CONFIGS
    return tiles.fills_device(configs, m, n, x.element_size(), *device_limits(x))


def table_configs(family: str, m: int, n: int, x: torch.Tensor) -> tuple:
    """The `triton.Config`s of `tiles.ranked_tiles` for this GEMM on x's device: `tiles.default_tile`'s choice
    first; the launcher runs the first whose kernel does not spill registers with this expression."""
    return _ranked_configs(family, m, n, x.element_size(), *device_limits(x))


@functools.lru_cache(maxsize=4096)
def _ranked_configs(family: str, m: int, n: int, element_size: int, sm_count: int, shared_memory: int) -> tuple:
    import triton

    from .kernels import tiles

    configs = tiles.MATMUL_CONFIGS if family == "matmul_epilogue" else tiles.PROLOGUE_CONFIGS
    return tuple(triton.Config(c.meta(), num_warps=c.num_warps, num_stages=c.num_stages)
                 for c in tiles.ranked_tiles(configs, m, n, element_size, sm_count, shared_memory))


def tma_requested() -> bool:
    """EXPRC_TMA=0 turns the sm_90 TMA + persistent epilogue kernel off (today's kernel everywhere)."""
    return os.environ.get("EXPRC_TMA", "1").lower() not in ("0", "false", "no", "off")


def _tracing(t: torch.Tensor) -> bool:
    """Whether `t` is being traced (torch.compile, torch.export): a fake tensor, or Dynamo compiling."""
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor) or torch.compiler.is_compiling()


def tma_tile(a: torch.Tensor, weight: torch.Tensor, m: int, n: int, k: int):
    """The tile of the TMA + persistent epilogue kernel for this GEMM (`tma_tiles.select_tma`: sm_90, TMA-aligned
    a and weight, enough tiles to fill the GPU), or None: today's kernel runs (also on CPU tensors, under
    EXPRC_AUTOTUNE=1, which tunes today's kernel, and with EXPRC_TMA=0).

    Eager calls only: a traced call (torch.compile, torch.export) records today's kernel. The TMA kernel builds
    its descriptors in a global scratch buffer that Triton allocates at launch; whether the launchers of
    torch's compiled graphs provide that buffer depends on the torch release (unverified on a GPU for torch
    2.11), while today's kernel needs none."""
    if not a.is_cuda or _tracing(a) or autotune_requested() or not tma_requested():
        return None
    from .kernels.tma_tiles import select_tma

    return select_tma(torch.cuda.get_device_capability(a.device), m, n, k, a.element_size(),
                      (a.data_ptr(), weight.data_ptr()), *device_limits(a), input_precision=_precision(a))


def _precision(x: torch.Tensor) -> str:
    """The dot's input precision: TF32 only where torch's own f32 matmuls may use it."""
    return "tf32" if x.dtype == torch.float32 and x.is_cuda and torch.backends.cuda.matmul.allow_tf32 else "ieee"


def _launch_tuned(family: str, expr: ModuleType, m: int, n: int, k: int, x: torch.Tensor, *args) -> None:
    from .kernels.support import is_interpreted

    precision = _precision(x)
    kernels = family_for(family, expr)
    if is_interpreted(expr.expr_fn):  # the interpreter runs one fixed tile
        kernels.launch(expr, *args, input_precision=precision, config=None)
        return
    if not autotune_requested():
        with _on(x):
            kernels.launch(expr, *args, input_precision=precision, config=table_configs(family, m, n, x))
        return
    key = (family, 1 << max(m - 1, 0).bit_length(), n, k, x.dtype, x.device)
    with _on(x):
        chosen = kernels.launch(expr, *args, input_precision=precision, config=_TUNED.get(key))
    if key not in _TUNED and chosen is not None:
        _TUNED[key] = chosen
