"""The references the derivative tests compare with (a helper module, not a test file).

- `torch_derivative(root, x, dtype)`: PyTorch autograd of the IR `root` as written (unlowered), evaluated by a
  tiny torch evaluator (one entry per op, torch's own functions: torch.tanh, torch.sigmoid, torch.clamp with
  scalar bounds, ...), in float64 (the reference) or float32 (what PyTorch itself gets in f32).
- `lowered_derivative(root, mode)`: f' as exprc builds it: optimize, differentiate the optimized IR, lower.
- `bound_hits(root)`: f32 inputs at and next to the points where a clip argument of `root` meets a bound.
- `kinks(root, x)`: inputs within f32 rounding of a point where f is not differentiable (a clip bound, abs at
  0) or jumps (inside, sign): there the optimized IR may put the kink on either side (`c*clip(a)` becomes
  `clip(c*a)`, whose f32 comparison rounds differently), so the value there is checked separately (at the bounds
  of the optimized IR, against torch's f32 autograd of that IR), not against the written form.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from exprc.ir import GroupOp, Node, Op, evaluate
from exprc.passes.pipeline import PipelineResult, optimize, optimize_derivative


def _clamp(a: torch.Tensor, n: Node) -> torch.Tensor:
    lo, hi = n.arg
    return torch.clamp(a, min=None if lo == -math.inf else lo, max=None if hi == math.inf else hi) \
        if (lo, hi) != (-math.inf, math.inf) else a


def _inside(a: torch.Tensor, n: Node) -> torch.Tensor:
    lo, hi = n.arg
    ok = torch.ones_like(a, dtype=torch.bool)
    if lo != -math.inf:
        ok = ok & (a > lo)
    if hi != math.inf:
        ok = ok & (a < hi)
    return ok.to(a.dtype)


TORCH_EVAL = {
    Op.ADD: lambda a, b, n: a + b,
    Op.SUB: lambda a, b, n: a - b,
    Op.MUL: lambda a, b, n: a * b,
    Op.DIV: lambda a, b, n: a / b,
    Op.NEG: lambda a, n: -a,
    Op.ABS: lambda a, n: torch.abs(a),
    Op.POW: lambda a, n: a ** n.arg,
    Op.CLIP: _clamp,
    Op.INSIDE: _inside,
    Op.SIGN: lambda a, n: torch.sign(a),
    Op.TANH: lambda a, n: torch.tanh(a),
    Op.SIGMOID: lambda a, n: torch.sigmoid(a),
    Op.EXP: lambda a, n: torch.exp(a),
}


def torch_values(root: Node, x: torch.Tensor) -> dict[Node, torch.Tensor]:
    """Every node of `root` evaluated by torch on `x` (constants are tensors like x)."""
    vals: dict[Node, torch.Tensor] = {}
    for n in root.toposort():
        if n.op is Op.CONST:
            vals[n] = torch.full_like(x, n.arg)
        elif n.op is Op.INPUT:
            vals[n] = x
        else:
            vals[n] = TORCH_EVAL[n.op](*(vals[s] for s in n.src), n)
    return vals


class Reference(NamedTuple):
    values: dict[Node, np.ndarray]  # every node that depends on x
    adjoints: dict[Node, np.ndarray]  # d root / d node: the gradient flowing into it (the input's: the derivative)
    terms: list[np.ndarray]  # what each node sends each source in the chain rule (adjoint * local partial)


_REFERENCES: dict[tuple, Reference] = {}


def torch_reference(root: Node, x: np.ndarray, dtype: torch.dtype = torch.float64) -> Reference:
    """Values, adjoints and chain-rule terms of the nodes of `root`, by PyTorch autograd in `dtype` (cached)."""
    key = (root, dtype, np.asarray(x, np.float64).tobytes())
    if key not in _REFERENCES:
        if len(_REFERENCES) > 64:
            _REFERENCES.clear()
        _REFERENCES[key] = _torch_reference(root, x, dtype)
    return _REFERENCES[key]


def _torch_reference(root: Node, x: np.ndarray, dtype: torch.dtype) -> Reference:
    xt = torch.tensor(np.asarray(x, np.float64), dtype=dtype, requires_grad=True)
    vals = torch_values(root, xt)
    live = [n for n in root.toposort() if vals[n].requires_grad]
    values = {n: vals[n].detach().double().numpy() for n in live}
    if not vals[root].requires_grad:  # no x in the expression, or only under inside (piecewise constant)
        return Reference(values, {n: np.zeros(np.shape(x)) for n in live}, [])
    grads = torch.autograd.grad(vals[root].sum(), [vals[n] for n in live], allow_unused=True, retain_graph=True)
    adjoints, terms = {}, []
    for n, g in zip(live, grads, strict=True):
        adjoints[n] = np.zeros(np.shape(x)) if g is None else g.double().numpy()
        srcs = [s for s in dict.fromkeys(n.src) if vals[s].requires_grad]
        if g is not None and srcs:
            parts = torch.autograd.grad(vals[n], [vals[s] for s in srcs], grad_outputs=g, retain_graph=True,
                                        allow_unused=True)
            terms += [p.double().numpy() for p in parts if p is not None]
    return Reference(values, adjoints, terms)


def torch_derivative(root: Node, x: np.ndarray, dtype: torch.dtype = torch.float64) -> np.ndarray:
    """d root / dx by PyTorch autograd, elementwise, computed in `dtype`."""
    adjoints = torch_reference(root, x, dtype).adjoints
    return next((g for n, g in adjoints.items() if n.op is Op.INPUT), np.zeros(np.shape(x)))


def reference_scale(root: Node, x: np.ndarray) -> np.ndarray:
    """S, per element: the largest finite magnitude among the float64 values, adjoints and chain-rule terms of the
    nodes of `root`: what the chain rule multiplies and sums (an error of 1 - t*t is scaled by the gradient flowing
    into the tanh; d(x/x)/dx sums 1/x and -1/x, and float64 itself loses what is added to 1e30). Taken from
    PyTorch, not from the derivative under test, so a wrong rule cannot widen its own tolerance."""
    ref = torch_reference(root, x)
    s = np.zeros(np.shape(x))
    for v in [*ref.values.values(), *ref.adjoints.values(), *ref.terms]:
        s = np.maximum(s, np.where(np.isfinite(v), np.abs(v), 0))
    return s


def lowered_derivative(root: Node, mode: str) -> PipelineResult:
    return optimize_derivative(optimize(root, mode).optimized, mode)


def kinks(root: Node, x: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """Per element: is some clip (inside) argument within `rel` (relative to 1 + |bound|) plus 8 times its own f32
    rounding error of a finite bound, or some abs (sign) argument that close to 0? (An approximate mode moves the
    argument by its own error: `fast` needs a larger `rel`.)"""
    near = np.zeros(x.shape, bool)
    with np.errstate(all="ignore"):
        for n in root.toposort():
            if n.op not in (Op.CLIP, Op.INSIDE, Op.ABS, Op.SIGN):
                continue
            a64 = evaluate(n.src[0], x)
            a32 = evaluate(n.src[0], x, np.float32).astype(np.float64)
            slack = rel + 8 * np.where(np.isfinite(a32 - a64), np.abs(a32 - a64), 0)
            for b in n.arg if n.op in (Op.CLIP, Op.INSIDE) else (0.0,):
                if math.isfinite(b):
                    near |= np.abs(a64 - b) <= slack * (1 + abs(b))
    return near


def outside_f32(root: Node, x: np.ndarray) -> np.ndarray:
    """Per element: is a float64 value of a node of `root` NaN or outside f32's normal range (over 1e37, or
    nonzero under 1e-37 in magnitude), or does an adjoint overflow it? There f32 code cannot match float64: an
    overflowed factor times a zero one is NaN (tanh(exp(x)) at x = 100); a NaN value times the 0 of clip' is NaN
    where torch's clamp backward selects 0. From PyTorch, not from the derivative under test."""
    out = np.zeros(np.shape(x), bool)
    ref = torch_reference(root, x)
    with np.errstate(all="ignore"):
        for v in map(np.abs, ref.values.values()):
            out |= np.isnan(v) | (v > 1e37) | ((v > 0) & (v < 1e-37))
        for v in map(np.abs, ref.adjoints.values()):
            out |= v > 1e37
    return out


def arithmetic(node: Node) -> bool:
    """No transcendental in `node` (numpy's and torch's f32 tanh may differ by an ulp: a crossing moves)."""
    return not any(m.op in GroupOp.Transcendental for m in node.toposort())


def bound_hits(root: Node, lo: float = -60.0, hi: float = 60.0) -> np.ndarray:
    """f32 inputs at and around (+-16 ulps) each point where an argument of a clip/inside of `root` crosses one
    of its finite bounds (crossings found on a grid, refined by bisection in float64). Only arguments of plain
    arithmetic: numpy's and torch's f32 tanh may differ by an ulp, which moves a crossing."""
    grid = np.linspace(lo, hi, 24001)
    found = []
    for n in root.toposort():
        if n.op not in (Op.CLIP, Op.INSIDE) or not arithmetic(n):
            continue
        for b in (v for v in n.arg if math.isfinite(v)):
            d = evaluate(n.src[0], grid) - b
            for i in np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) <= 0)[0]:
                a, c = grid[i], grid[i + 1]
                for _ in range(60):
                    m = (a + c) / 2
                    a, c = (m, c) if np.sign(evaluate(n.src[0], np.array([m]))[0] - b) == np.sign(d[i]) else (a, m)
                bits = np.array([a], np.float32).view(np.int32) + np.arange(-16, 17, dtype=np.int32)
                found.append(bits.view(np.float32).astype(np.float64))
    return np.unique(np.concatenate(found)) if found else np.zeros(0)
