"""A numpy interpreter of the IR, in float64 (the reference) or float32 (what a kernel computes).

NaN propagates through every op (clip included), as in the generated kernels, except the piecewise-constant ops
of derivatives: `inside` and `sign` of NaN are 0.0 (torch.clamp's gradient and torch.sign agree).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .dtypes import BOOL, F32, I32
from .node import Node
from .ops import Op


def _sigmoid(a: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _clip(a: np.ndarray, n: Node) -> np.ndarray:
    lo, hi = n.arg
    return np.clip(a, a.dtype.type(lo), a.dtype.type(hi))


def _inside(a: np.ndarray, n: Node, ft: type) -> np.ndarray:
    lo, hi = n.arg
    with np.errstate(invalid="ignore"):
        ok = np.ones(a.shape, bool)
        if lo != -np.inf:  # a side at +-inf is no bound (as clip's code skips it): inside(-inf, -inf, hi) is 1
            ok &= a > a.dtype.type(lo)  # compared in the computing type (f32 bounds round, as in the kernels)
        if hi != np.inf:
            ok &= a < a.dtype.type(hi)
    return ok.astype(ft)


def _sign(a: np.ndarray, n: Node, ft: type) -> np.ndarray:
    return ((a > 0).astype(ft) - (a < 0).astype(ft)).astype(ft)  # NaN and +-0 -> 0 (torch.sign's convention)


def _bitcast(a: np.ndarray, n: Node, ft: type) -> np.ndarray:
    if n.dtype is I32:  # the bits of the f32 value (a computed in float64 is rounded to f32 first)
        return np.array(a, dtype=np.float32).view(np.int32)
    return np.array(a, dtype=np.int32).view(np.float32).astype(ft)


def _cast(a: np.ndarray, n: Node, ft: type) -> np.ndarray:
    if n.dtype is I32:
        out = np.zeros(a.shape, np.int32)
        ok = np.isfinite(a) & (np.abs(a) < 2.0**31)
        out[ok] = np.trunc(a[ok]).astype(np.int32)
        return out
    return a.astype(ft)


# op -> f(operands..., node, float type); one entry per op (tested for completeness)
EVAL: dict[Op, Callable] = {
    Op.ADD: lambda a, b, n, ft: a + b,
    Op.SUB: lambda a, b, n, ft: a - b,
    Op.MUL: lambda a, b, n, ft: a * b,
    Op.DIV: lambda a, b, n, ft: a / b,
    Op.NEG: lambda a, n, ft: -a,
    Op.ABS: lambda a, n, ft: np.abs(a),
    Op.POW: lambda a, n, ft: a ** n.arg if n.arg else np.ones_like(a),
    Op.CLIP: lambda a, n, ft: _clip(a, n),
    Op.INSIDE: _inside,
    Op.SIGN: _sign,
    Op.TANH: lambda a, n, ft: np.tanh(a),
    Op.SIGMOID: lambda a, n, ft: _sigmoid(a),
    Op.EXP: lambda a, n, ft: np.exp(a),
    Op.TANH_APPROX: lambda a, n, ft: np.tanh(a),
    Op.EXP_APPROX: lambda a, n, ft: np.exp(a),
    Op.ROUND: lambda a, n, ft: np.rint(a),
    Op.CAST: _cast,
    Op.BITCAST: _bitcast,
    Op.SHL: lambda a, n, ft: np.left_shift(a.astype(np.int32), np.int32(n.arg)).astype(np.int32),
}


def evaluate(root: Node, x: np.ndarray | float, dtype: type = np.float64) -> np.ndarray:
    """Evaluate the expression rooted at `root` for every element of `x`, computing in `dtype`."""
    ft = np.dtype(dtype).type
    xs = np.asarray(x, dtype=ft)
    vals: dict[int, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for n in root.toposort():
            if n.op is Op.CONST:
                t = ft if n.dtype is F32 else np.int32 if n.dtype is I32 else np.bool_
                v = np.full(xs.shape, n.arg, dtype=t)
            elif n.op is Op.INPUT:
                v = xs
            else:
                v = EVAL[n.op](*(vals[id(s)] for s in n.src), n, ft)
                if n.dtype is F32:
                    v = np.asarray(v).astype(ft, copy=False)
                elif n.dtype is BOOL:
                    v = np.asarray(v, dtype=bool)
            vals[id(n)] = np.broadcast_to(v, xs.shape) if np.ndim(v) < xs.ndim else v
    return np.asarray(vals[id(root)])
