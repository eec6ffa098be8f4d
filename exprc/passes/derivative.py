"""The symbolic derivative f'(x) as ordinary IR, from a table of gradient rules (tinygrad's `gradient.py`, PyTorch's
`derivatives.yaml`).

Input: the forward IR after the mode-independent optimization passes (`pipeline.optimization_passes()`, what
`PipelineResult.optimized` returns): tanh, sigmoid, exp and pow are still themselves, so each has its rule, and
the forward and its derivative are lowered afterwards by the same mode. Lowered ops (`tanh_approx`, `round`, i32
arithmetic, ...) have no rule: giving lowered IR is an ExprcError.

Each rule maps (g, node), g the gradient flowing into the node, to the gradients of the node's sources (None: no
gradient flows there). `derivative` walks the nodes in reverse topological order, each after all its users, and
sums what a node's users send it with `+` (tinygrad's `compute_gradient`); only nodes that depend on x get a
gradient. Rules reuse the forward value where it is cheaper than recomputing: tanh' = 1 - t*t with t the forward
tanh node itself, sigmoid' = s*(1 - s), exp' = e, d(a/b)/db = -q/b with q = a/b. Hash-consing makes those the very
nodes of the forward. The result is unsimplified IR (`1.0*...` included): `pipeline.optimize_derivative` runs the
same optimization passes and the same lowering on it as on the forward.

Where f is not differentiable, the convention is PyTorch's (torch 2.14, checked; the test file states the facts):
- clip(a, lo, hi)' = inside(a, lo, hi): 1.0 for lo < a < hi, 0.0 at the bounds themselves, outside them and for
  NaN, as torch.clamp with SCALAR bounds (torch.clamp(x, -5, 5) has gradient 0 at x = -5 and 5 and at NaN; with
  tensor bounds torch gives 0.5 at a bound and 1 at NaN: not our convention). A side at +-inf is no bound, as
  clip's code skips it (torch.clamp(x, max=hi) has gradient 1 at x = -inf).
- abs(a)' = sign(a): 0.0 at +-0 (torch: abs's gradient at 0 is 0) and at NaN.
- a**0 sends no gradient (torch: x**0 has gradient 0, even at NaN).
Both new ops compare and select (`tl.where`-free: `(a > lo).to(tl.float32)`), so the Triton and torch codes agree
bit for bit at the bounds.

A product with an overflowed factor can still be NaN where the float64 derivative is finite (0*inf: tanh(exp(x))
at x = 100, where exp overflows f32 but not float64); that happens only where a forward intermediate leaves f32's
range. Saturating functions do not: sigmoid(40*x) at x = +-30 gives s*(1 - s) = 0, not inf/inf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..errors import ExprcError
from ..ir import F32, Node, Op, const, inside, unary
from .pattern import P
from .rewrite import Fired, where_defined

Grads = tuple["Node | None", ...]  # one per source of the node, in order; None: no gradient flows into it


@dataclass(frozen=True)
class GradientRule:
    name: str  # "d tanh(a) = g*(1 - t*t)"
    pattern: P  # the forward node it applies to (the names it binds are passed to `fn`)
    fn: Callable[..., Grads]  # (g, **binds) -> the gradients of the node's sources
    where: str  # file:line of `fn`, for traces

    @staticmethod
    def of(name: str, pattern: P, fn: Callable[..., Grads]) -> "GradientRule":
        return GradientRule(name, pattern, fn, where_defined(fn))

    def __call__(self, g: Node, node: Node) -> Grads | None:
        binds: dict = {}
        return self.fn(g, **binds) if self.pattern.match(node, binds) else None

    @property
    def fired(self) -> Fired:
        return Fired(self.name, self.where)


class GradientTable:
    """Gradient rules in order, the candidates for each op precomputed; the first rule that matches applies."""

    def __init__(self, rules: Iterable[tuple[str, P, Callable[..., Grads]]]) -> None:
        self.rules: tuple[GradientRule, ...] = tuple(GradientRule.of(*r) for r in rules)
        self.by_op: dict[Op, tuple[GradientRule, ...]] = {
            op: tuple(r for r in self.rules if r.pattern.ops is None or op in r.pattern.ops) for op in Op}

    def __iter__(self) -> Iterator[GradientRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def gradients(self, g: Node, node: Node, trace: list[Fired] | None = None) -> Grads:
        for rule in self.by_op[node.op]:
            grads = rule(g, node)
            if grads is not None:
                if trace is not None:
                    trace.append(rule.fired)
                return grads
        raise ExprcError(f"no derivative rule for {node.op.name.lower()}:{node.dtype.value} (the derivative takes "
                         "the optimized IR before lowering)")


def _pow(a: Node, n: int) -> Node:
    return Node(Op.POW, F32, (a,), n)


A, B = P.var("a"), P.var("b")

GRADIENTS = GradientTable([
    ("d(a+b) = g, g", P(Op.ADD, A, B, dtype=F32), lambda g, a, b: (g, g)),
    ("d(a-b) = g, -g", P(Op.SUB, A, B, dtype=F32), lambda g, a, b: (g, -g)),
    ("d(a*b) = g*b, g*a", P(Op.MUL, A, B, dtype=F32), lambda g, a, b: (g * b, g * a)),
    ("d(a/b) = g/b, -(g*q)/b   (q = a/b, the forward value)",
     P(Op.DIV, A, B, name="q"), lambda g, a, b, q: (g / b, -(g * q) / b)),
    ("d neg(a) = -g", P(Op.NEG, A), lambda g, a: (-g,)),
    ("d abs(a) = g*sign(a)   (0 at a = 0, as torch)", P(Op.ABS, A), lambda g, a: (g * unary(Op.SIGN, a),)),
    ("d a**0 = nothing   (a constant 1)", P(Op.POW, A, arg=0), lambda g, a: (None,)),
    ("d a**n = g*(n*a**(n-1))", P(Op.POW, A, name="p"), lambda g, a, p: (g * (float(p.arg) * _pow(a, p.arg - 1)),)),
    ("d clip(a, lo, hi) = g*inside(a, lo, hi)   (0 at the bounds and for NaN: torch.clamp, scalar bounds)",
     P(Op.CLIP, A, name="k"), lambda g, a, k: (g * inside(a, *k.arg),)),
    ("d tanh(a) = g*(1 - t*t)   (t = tanh(a), the forward value)",
     P(Op.TANH, A, name="t"), lambda g, a, t: (g * (1.0 - t * t),)),
    ("d sigmoid(a) = g*(s*(1 - s))   (s = sigmoid(a), the forward value)",
     P(Op.SIGMOID, A, name="s"), lambda g, a, s: (g * (s * (1.0 - s)),)),
    ("d exp(a) = g*e   (e = exp(a), the forward value)", P(Op.EXP, A, name="e"), lambda g, a, e: (g * e,)),
    ("d inside(a) = d sign(a) = nothing   (piecewise constant)", P((Op.INSIDE, Op.SIGN), A), lambda g, a: (None,)),
])


def _depends_on_input(root: Node) -> set[Node]:
    """The nodes whose value depends on x (the only ones a gradient flows into)."""
    live: set[Node] = set()
    for n in root.toposort():
        if n.op is Op.INPUT or any(s in live for s in n.src):
            live.add(n)
    return live


def derivative(root: Node, trace: list[Fired] | None = None, rules: GradientTable = GRADIENTS) -> Node:
    """d root / dx as IR (unsimplified), from the forward IR before lowering; `trace` collects the rules applied,
    one per node that depends on x (reverse topological order)."""
    if root.dtype is not F32:
        raise ExprcError(f"the derivative of an expression needs an f32 root, got {root.dtype.value}")
    live = _depends_on_input(root)
    grads: dict[Node, Node] = {root: const(1.0)} if root in live else {}
    result = const(0.0)
    for node in reversed(root.toposort()):
        g = grads.pop(node, None)
        if g is None:
            continue
        if node.op is Op.INPUT:
            result = g
            continue
        for s, gs in zip(node.src, rules.gradients(g, node, trace), strict=True):
            if gs is not None and s in live:
                grads[s] = grads[s] + gs if s in grads else gs
    return result


@dataclass(frozen=True)
class Derivative:
    """The pass: forward IR (optimized, not lowered) -> its derivative; `optimize_derivative` runs it first."""

    name: str = "derivative"

    def run(self, root: Node, ctx) -> Node:
        return derivative(root, ctx.trace)
