"""Range (interval) analysis: for every node, an interval that holds all its non-NaN values.

`interval(node)` is cached per node (nodes are immutable, so the fact never goes stale). Rules of later passes use
it as a guard: a clip whose argument already fits is dropped, an exp whose argument cannot overflow needs no
clamp. Bounds are computed in float64 and widened by a relative 1e-6 where f32 rounding could cross them.
The pass itself changes nothing; `exprc explain` prints the ranges it found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import weakref

from ..ir import F32, Node, Op

INF = math.inf
FULL = (-INF, INF)


def _nan_safe(v: float, default: float) -> float:
    return default if math.isnan(v) else v


def _mul_bound(a: float, b: float) -> float:
    # values are finite reals: an infinite endpoint means "unbounded", and 0 * unbounded is 0
    if a == 0 or b == 0:
        return 0.0
    return a * b


def _mul(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    ps = [_mul_bound(x, y) for x in a for y in b]
    return (min(ps), max(ps))


def _monotone(f, a: tuple[float, float]) -> tuple[float, float]:
    with_errs = []
    for v in a:
        try:
            with_errs.append(f(v))
        except OverflowError:
            with_errs.append(INF)
    return (with_errs[0], with_errs[1])


def _sigmoid(v: float) -> float:
    if v == INF:
        return 1.0
    if v == -INF:
        return 0.0
    return 1.0 / (1.0 + math.exp(-v)) if v >= -700 else 0.0


def _pow(a: tuple[float, float], n: int) -> tuple[float, float]:
    if n == 0:
        return (1.0, 1.0)
    lo, hi = a
    def p(v: float) -> float:
        try:
            return v**n
        except OverflowError:
            return INF if v > 0 or n % 2 == 0 else -INF
    if n % 2 == 1 or lo >= 0:
        return (p(lo), p(hi))
    if hi <= 0:
        return (p(hi), p(lo))
    return (0.0, max(p(lo), p(hi)))


_CACHE: "weakref.WeakKeyDictionary[Node, tuple[float, float]]" = weakref.WeakKeyDictionary()


def interval(node: Node) -> tuple[float, float]:
    """The cached interval of `node`, computing those of its sources first (iteratively: deep graphs are fine)."""
    hit = _CACHE.get(node)
    if hit is not None:
        return hit
    for n in node.toposort(skip=lambda m: m in _CACHE):
        _CACHE[n] = _interval_of(n)
    return _CACHE[node]


def _interval_of(node: Node) -> tuple[float, float]:
    if node.dtype is not F32:
        return FULL
    op = node.op
    if op is Op.CONST:
        return (node.arg, node.arg)
    if op is Op.INPUT:
        return FULL
    r = [_CACHE[s] for s in node.src]
    if op is Op.ADD:
        return (_nan_safe(r[0][0] + r[1][0], -INF), _nan_safe(r[0][1] + r[1][1], INF))
    if op is Op.SUB:
        return (_nan_safe(r[0][0] - r[1][1], -INF), _nan_safe(r[0][1] - r[1][0], INF))
    if op is Op.MUL:
        return _mul(r[0], r[1])
    if op is Op.DIV:
        lo, hi = r[1]
        if lo <= 0 <= hi:
            return FULL
        inv = (1 / hi if hi != INF else 0.0, 1 / lo if lo != -INF else 0.0)
        return _mul(r[0], inv) if all(map(math.isfinite, inv)) else FULL  # 1/5e-324 is inf: no bound from it
    if op is Op.NEG:
        return (-r[0][1], -r[0][0])
    if op is Op.ABS:
        lo, hi = r[0]
        if lo >= 0:
            return (lo, hi)
        if hi <= 0:
            return (-hi, -lo)
        return (0.0, max(-lo, hi))
    if op is Op.POW:
        return _pow(r[0], node.arg)
    if op is Op.CLIP:
        lo, hi = node.arg
        return (min(max(r[0][0], lo), hi), max(min(r[0][1], hi), lo))
    if op is Op.INSIDE:  # an indicator; NaN in gives 0.0, so even a fitting argument does not make it (1, 1)
        return (0.0, 1.0)
    if op is Op.SIGN:
        return (-1.0, 1.0)
    if op in (Op.TANH, Op.TANH_APPROX):
        return _monotone(math.tanh, r[0])
    if op is Op.SIGMOID:
        return _monotone(_sigmoid, r[0])
    if op in (Op.EXP, Op.EXP_APPROX):
        return _monotone(lambda v: math.exp(v) if v < 710 else INF, r[0])
    if op is Op.ROUND:
        return (math.floor(r[0][0]) if math.isfinite(r[0][0]) else r[0][0],
                math.ceil(r[0][1]) if math.isfinite(r[0][1]) else r[0][1])
    return FULL


def within(node: Node, lo: float, hi: float) -> bool:
    """True when every non-NaN value of `node` lies in [lo, hi], with a margin for f32 rounding."""
    a, b = interval(node)
    ok_lo = lo == -INF or a >= lo + 1e-6 * abs(lo)
    ok_hi = hi == INF or b <= hi - 1e-6 * abs(hi)
    return ok_lo and ok_hi


def format_interval(node: Node) -> str:
    lo, hi = interval(node)
    return f"[{lo:.6g}, {hi:.6g}]"


@dataclass(frozen=True)
class Ranges:
    """Analysis only: computes every node's interval (cached) so later passes and `explain` can use it."""

    name: str = "ranges"

    def run(self, root: Node, ctx) -> Node:
        for n in root.toposort():
            interval(n)
        return root
