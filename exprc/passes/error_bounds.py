"""Error bounds: the stated error of each lowering of each op (`LOWERING_ERRORS`), the error budget of each storage
dtype (`BUDGET`), and a proof that an expression lowered in a mode stays within the budget (`prove`).

Budget: a kernel storing f in dtype t may compute f with |f_computed(x) - f(x)| <= a_t * (1 + |f(x)|), a_t half of
t's rounding unit (bf16 2^-9, f16 2^-12, f32 2^-25): the output's own rounding is at least twice that, and the
absolute floor a_t (the `1 +`) covers cancellation near the zeros of f at LayerNorm's unit output scale (the
error measure of bench/accuracy.py and the interpreter tests).

Proof, for 16-bit storage: f's input is a stored value (x of the element-wise kernel, r of the matmul epilogue,
A of the prologue), so every finite input is enumerated (65,536 bf16 bit patterns less NaN and inf) and, at each,
a running error bound is carried through the optimized IR (before lowering): each f32 operation adds its rounding
(2^-24 relative); tanh, sigmoid, exp and division pass their argument's error on through a bound of their
derivative over the argument's error interval and add their lowering's stated error at its worst. Inputs where
an intermediate overflows f32 are left out (every lowering gives inf there). For f32 storage the inputs are not
enumerable and the budget is below a single f32 rounding: nothing cheaper than `precise` can be proven, so the
same bound is only evaluated on the bf16 inputs (a counterexample suffices to refuse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import Node, Op

U = 2.0**-24  # f32 rounding unit (relative error of one correctly rounded operation)
F32_MAX = float(np.finfo(np.float32).max)
BUDGET = {"float32": 2.0**-25, "bfloat16": 2.0**-9, "float16": 2.0**-12}  # a_t: allowed a_t * (1 + |f|)


@dataclass(frozen=True)
class OpError:
    """|computed - exact| <= rel * |result| + abs + per_arg * |argument| * |result|, for the op's exact result at
    the computed argument."""

    rel: float = 0.0
    abs: float = 0.0
    per_arg: float = 0.0
    source: str = ""

    def text(self) -> str:
        parts = ([f"{self.rel / U:g} x 2^-24 relative"] if self.rel else []) + \
            ([f"{self.abs:.3g} absolute"] if self.abs else []) + \
            ([f"{self.per_arg / U:g} x 2^-24 x |a| relative"] if self.per_arg else [])
        return " + ".join(parts) + (f" ({self.source})" if self.source else "")


TANH_APPROX_ERROR = 2.0**-10.987
# mode -> op -> the stated error of its lowering (ops of the optimized IR; arithmetic is correctly rounded f32)
LOWERING_ERRORS: dict[str, dict[Op, OpError]] = {
    "precise": {
        Op.TANH: OpError(rel=4 * U, source="libdevice tanhf, 2 ulp: CUDA Programming Guide, math functions"),
        Op.SIGMOID: OpError(rel=6 * U, source="1/(1 + expf(-a)): expf 2 ulp, the add and div_rn 0.5 ulp each"),
        Op.EXP: OpError(rel=4 * U, abs=2.0**-126, source="libdevice expf, 2 ulp; below 2^-126 (subnormal) absolute"),
        Op.DIV: OpError(rel=U, source="div_rn, correctly rounded"),
    },
    "fast": {
        Op.TANH: OpError(abs=TANH_APPROX_ERROR, source="tanh.approx.f32, PTX ISA's 2^-10.987, taken as absolute: "
                                                        "that also covers a relative reading, |tanh| <= 1"),
        Op.SIGMOID: OpError(rel=2 * U, abs=TANH_APPROX_ERROR / 2, source="0.5 + 0.5*tanh.approx(a/2)"),
        Op.EXP: OpError(rel=4 * U, abs=2.0**-126, per_arg=2 * 1.173 * U,
                        source="ex2.approx.f32 of a*log2(e): 2 + 1.173|a| ulp, CUDA's __expf; flushes below 2^-126"),
        Op.DIV: OpError(rel=U, source="div_rn, correctly rounded"),
    },
    "horner": {
        Op.TANH: OpError(abs=4e-7, source="1 - 2/(e^2a + 1), measured 2.4e-7 (f32, every bf16 input and a dense "
                                          "grid; tests/test_error_bounds.py)"),
        Op.SIGMOID: OpError(rel=4 * U, abs=2.5e-7, source="1/(1 + e^-a), measured 1.2e-7 absolute"),
        Op.EXP: OpError(rel=4 * U, abs=2.5e-38, source="range reduction + degree-7 Horner polynomial, measured 1.7 "
                                                        "x 2^-24; its argument clamped at -86.6: 2.5e-38 absolute"),
        Op.DIV: OpError(rel=3 * U, source="software reciprocal, 1.5 ulp, and the multiplication"),
    },
}


@dataclass(frozen=True)
class Proof:
    mode: str
    storage: str
    ok: bool  # the bound holds at every checked input
    ratio: float  # worst (error bound) / (budget): <= 1 proves it
    worst_x: float  # the input where the ratio is worst
    inputs: int  # how many inputs were checked
    method: str

    def text(self) -> str:
        verdict = "within" if self.ok else "NOT within"
        return (f"{self.mode}: error bound {self.ratio:.3g} x the {self.storage} budget (worst at x = "
                f"{self.worst_x:.6g}), {verdict} it; {self.method}")


def storage_inputs(storage: str) -> np.ndarray:
    """Every finite value of a 16-bit storage dtype, as float64 (for f32: the bf16 values, a sample)."""
    bits = np.arange(65536, dtype=np.uint32)
    with np.errstate(invalid="ignore"):
        if storage == "float16":
            x = bits.astype(np.uint16).view(np.float16).astype(np.float64)
        else:
            x = (bits << 16).view(np.float32).astype(np.float64)
    return x[np.isfinite(x)]


def _round(v: np.ndarray, e: np.ndarray) -> np.ndarray:
    """The error after one f32 rounding of a value within e of v."""
    return e + U * (np.abs(v) + e)


def _propagate(n: Node, vals: list[np.ndarray], errs: list[np.ndarray], table: dict[Op, OpError]):
    """(exact value, error bound) of node n from its sources'."""
    op = n.op
    if op is Op.ADD or op is Op.SUB:
        v = vals[0] + vals[1] if op is Op.ADD else vals[0] - vals[1]
        return v, _round(v, errs[0] + errs[1])
    if op is Op.MUL:
        (a, b), (ea, eb) = vals, errs
        v = a * b
        return v, _round(v, np.abs(a) * eb + np.abs(b) * ea + ea * eb)
    if op in (Op.NEG, Op.ABS):  # exact and 1-Lipschitz
        return (-vals[0] if op is Op.NEG else np.abs(vals[0])), errs[0]
    if op is Op.CLIP:  # exact; the computed argument is within ea of a: clip moves at most as far (0 when saturated)
        (a,), (ea,) = vals, errs
        v = np.clip(a, *n.arg)
        return v, np.maximum(np.clip(a + ea, *n.arg) - v, v - np.clip(a - ea, *n.arg))
    if op is Op.POW:
        a, ea, k = np.abs(vals[0]), errs[0], n.arg
        v = vals[0] ** k
        big = (a + ea) ** k
        return v, (big - a**k) + max(k - 1, 0) * U * big
    a, ea = vals[0], errs[0]
    if op is Op.DIV:
        (a, b), (ea, eb) = vals, errs
        v = a / b
        room = np.abs(b) - eb
        prop = np.where(room > 0, (ea + np.abs(v) * eb) / np.where(room > 0, room, 1.0), np.inf)
        arg = b
    elif op is Op.TANH:
        v = np.tanh(a)
        m = np.maximum(np.abs(a) - ea, 0.0)
        prop = ea * (1.0 - np.tanh(m) ** 2)
        arg = a
    elif op is Op.SIGMOID:
        v = 0.5 * (1.0 + np.tanh(0.5 * a))
        s = 0.5 * (1.0 + np.tanh(0.5 * np.maximum(np.abs(a) - ea, 0.0)))
        prop = ea * s * (1.0 - s)
        arg = a
    elif op is Op.EXP:
        v = np.exp(a)
        prop = v * np.expm1(ea)
        arg = a
    else:
        raise ValueError(f"no error model for {op.name.lower()}")
    lo = table[op]
    mag = np.abs(v) + prop
    return v, prop + lo.rel * mag + lo.abs + lo.per_arg * (np.abs(arg) + ea) * mag


def error_bound(root: Node, mode: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f(x) exact, its error bound in `mode`, whether the point counts: no intermediate overflows f32)."""
    table = LOWERING_ERRORS[mode]
    vals: dict[Node, np.ndarray] = {}
    errs: dict[Node, np.ndarray] = {}
    counts = np.ones(x.shape, bool)
    with np.errstate(all="ignore"):
        for n in root.toposort():
            if n.op is Op.INPUT:
                v, e = x, np.zeros_like(x)
            elif n.op is Op.CONST:
                v = np.full_like(x, float(n.arg))
                e = np.full_like(x, abs(float(np.float32(n.arg)) - float(n.arg)) if math.isfinite(n.arg) else 0.0)
            else:
                v, e = _propagate(n, [vals[s] for s in n.src], [errs[s] for s in n.src], table)
            counts &= np.abs(v) <= F32_MAX
            vals[n], errs[n] = v, e
    return vals[root], errs[root], counts


def prove(root: Node, mode: str, storage: str) -> Proof:
    """Whether `root` (optimized IR, before lowering) lowered in `mode` stays within `storage`'s budget."""
    x = storage_inputs(storage)
    f, e, counts = error_bound(root, mode, x)
    ratio = np.where(counts, e / (BUDGET[storage] * (1.0 + np.abs(f))), 0.0)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    i = int(np.argmax(ratio))
    worst = float(ratio[i])
    if storage == "float32":
        method = "checked on the bf16 values only (f32 inputs are not enumerable): a refusal, never a proof"
        ok = False
    else:
        method = f"every one of the {int(counts.sum())} finite {storage} inputs that overflow nothing"
        ok = worst <= 1.0
    return Proof(mode, storage, ok, worst, float(x[i]), int(counts.sum()), method)
