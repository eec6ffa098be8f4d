"""ONNX export of models with exprc norms: standard ONNX operators (Tanh, Sigmoid, Clip, Mul, Add, ...), which
ONNX Runtime and TensorRT fuse themselves, computed from each expression BEFORE lowering (sigmoid stays Sigmoid;
horner's bit tricks and fast mode's inline PTX have no ONNX form).

    exprc.export_onnx(model, (x,), "model.onnx", dynamic_shapes=({0: torch.export.Dim("batch")},))

does `torch.export.export`, then `run_decompositions` with each exprc operator mapped to the torch ops of its
expression's optimized, unlowered IR (the `IR` of its generated module, evaluated op by op with the table
`REFERENCE_OPS`), then `torch.onnx.export` of that program (the dynamo exporter; needs the `onnx` extra).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..errors import ExprcError
from ..ir import Node, Op, parse_ir


def _clip(a: torch.Tensor, node: Node) -> torch.Tensor:
    lo, hi = node.arg
    return torch.clamp(a, min=None if lo == -math.inf else lo, max=None if hi == math.inf else hi)


# op -> torch ops of the unlowered IR (what an optimized, not yet lowered, expression contains)
REFERENCE_OPS: dict[Op, Callable] = {
    Op.ADD: lambda a, b, n: a + b,
    Op.SUB: lambda a, b, n: a - b,
    Op.MUL: lambda a, b, n: a * b,
    Op.DIV: lambda a, b, n: a / b,
    Op.NEG: lambda a, n: -a,
    Op.ABS: lambda a, n: torch.abs(a),
    Op.POW: lambda a, n: a ** n.arg if n.arg else torch.ones_like(a),
    Op.CLIP: _clip,
    Op.TANH: lambda a, n: torch.tanh(a),
    Op.SIGMOID: lambda a, n: torch.sigmoid(a),
    Op.EXP: lambda a, n: torch.exp(a),
}


@lru_cache(maxsize=None)
def _optimized_ir(key: str) -> Node:
    from .ops import expression

    return parse_ir(expression(key).IR.replace("; ", "\n"))


def reference(key: str, x: torch.Tensor) -> torch.Tensor:
    """f(x) of the expression module `key`, by the torch ops of its unlowered IR."""
    values: dict[Node, torch.Tensor | float] = {}
    for node in _optimized_ir(key).toposort():
        if node.op is Op.CONST:
            values[node] = float(node.arg)
        elif node.op is Op.INPUT:
            values[node] = x
        elif node.op in REFERENCE_OPS:
            values[node] = REFERENCE_OPS[node.op](*(values[s] for s in node.src), node)
        else:
            raise ExprcError(f"{key}: op {node.op.name.lower()} has no ONNX reference (lowered IR?)")
    out = values[_optimized_ir(key)]
    return out if isinstance(out, torch.Tensor) else torch.full_like(x, out)


def _expr_norm(x, weight, bias, key, use_triton):
    return reference(key, x) * weight + bias


def _linear_residual_norm(a, weight, bias, scale, residual, norm_weight, norm_bias, key, write_r, use_triton):
    r = F.linear(a, weight, bias)
    if scale is not None:
        r = r * scale
    if residual is not None:
        r = residual + r
    return r, _expr_norm(r, norm_weight, norm_bias, key, use_triton)


def _norm_linear(x, weight, bias, key, use_triton):
    return F.linear(reference(key, x), weight, bias)


def reference_decompositions() -> dict:
    """exprc operator -> its unlowered torch computation, for `ExportedProgram.run_decompositions`."""
    from . import ops  # noqa: F401  (registers torch.ops.exprc)

    return {torch.ops.exprc.expr_norm.default: _expr_norm,
            torch.ops.exprc.linear_residual_norm.default: _linear_residual_norm,
            torch.ops.exprc.norm_linear.default: _norm_linear}


def export_onnx(model: torch.nn.Module, args: tuple, path: str | os.PathLike, *, dynamic_shapes=None,
                opset_version: int | None = None):
    """Export `model` (eval mode) to the ONNX file `path` with exprc's norms as standard ONNX operators; returns
    the `torch.onnx.ONNXProgram`."""
    try:
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ExprcError(f"ONNX export needs the onnx extra ({e.name} is missing): pip install 'exprc[onnx]'") from None
    program = torch.export.export(model, args, dynamic_shapes=dynamic_shapes)
    program = program.run_decompositions(reference_decompositions())
    kw = {} if opset_version is None else {"opset_version": opset_version}
    onnx_program = torch.onnx.export(program, args, dynamo=True, **kw)
    onnx_program.save(os.fspath(path))
    return onnx_program
