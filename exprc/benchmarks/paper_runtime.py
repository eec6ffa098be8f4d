"""The paper's own runtime: the unoptimized expression evaluated with one eager torch op per IR node.

This is what the paper's generated PyTorch modules do (each `tanh`, `*`, `+`, `clip` a separate kernel reading and
writing a whole tensor), and the baseline exprc's fused kernels are measured against. Operations between two
constants are folded in Python (no op), as sympy would print them folded; every other node is exactly one torch
call, computed in the input's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..ir import Node, Op


def _binary(tensor_fn: Callable, scalar_first: Callable) -> Callable:
    """A binary op on (tensor, tensor), (tensor, scalar) or (scalar, tensor): one torch call each way."""

    def apply(a, b, node: Node):
        if isinstance(a, torch.Tensor):
            return tensor_fn(a, b)
        return scalar_first(a, b)

    return apply


def _scalar_tensor(c: float) -> torch.Tensor:
    # a 0-dim CPU tensor mixes with a tensor of any device and dtype without promoting it
    return torch.tensor(c, dtype=torch.float64)


def _pow(a, node: Node):
    return torch.ones_like(a) if node.arg == 0 else torch.pow(a, node.arg)


def _clip(a, node: Node):
    lo, hi = node.arg
    return torch.clamp(a, min=None if lo == -math.inf else lo, max=None if hi == math.inf else hi)


# op -> f(operands..., node), one torch call; the ops the frontend produces (lowered ops never reach this runtime)
TORCH_EAGER: dict[Op, Callable] = {
    Op.ADD: _binary(torch.add, lambda c, t: torch.add(t, c)),
    Op.SUB: _binary(torch.sub, lambda c, t: torch.rsub(t, c)),
    Op.MUL: _binary(torch.mul, lambda c, t: torch.mul(t, c)),
    Op.DIV: _binary(torch.div, lambda c, t: torch.div(_scalar_tensor(c), t)),
    Op.NEG: lambda a, node: torch.neg(a),
    Op.ABS: lambda a, node: torch.abs(a),
    Op.POW: _pow,
    Op.CLIP: _clip,
    Op.TANH: lambda a, node: torch.tanh(a),
    Op.SIGMOID: lambda a, node: torch.sigmoid(a),
    Op.EXP: lambda a, node: torch.exp(a),
}

# the same ops on two Python floats (constant subexpressions, folded without a torch call)
_FOLD: dict[Op, Callable] = {
    Op.ADD: lambda a, b, n: a + b,
    Op.SUB: lambda a, b, n: a - b,
    Op.MUL: lambda a, b, n: a * b,
    Op.DIV: lambda a, b, n: a / b if b else math.copysign(math.inf, a) if a else math.nan,
    Op.NEG: lambda a, n: -a,
    Op.ABS: lambda a, n: abs(a),
    Op.POW: lambda a, n: a ** n.arg,
    Op.CLIP: lambda a, n: a if math.isnan(a) else min(max(a, n.arg[0]), n.arg[1]),
    Op.TANH: lambda a, n: math.tanh(a),
    Op.SIGMOID: lambda a, n: 1 / (1 + math.exp(-a)) if a >= 0 else math.exp(a) / (1 + math.exp(a)),
    Op.EXP: lambda a, n: math.exp(a) if a < 709 else math.inf,
}


class PaperRuntime:
    """`f(x)` of one unoptimized expression, one eager torch op per non-constant IR node."""

    def __init__(self, root: Node):
        self.root = root
        self.nodes = root.toposort()
        for n in self.nodes:
            if n.op not in (Op.CONST, Op.INPUT) and n.op not in TORCH_EAGER:
                raise ValueError(f"the paper runtime evaluates unoptimized IR; {n.op.name} comes from lowering")
        # after step i, the values nobody reads any more are dropped (as Python frees a generated module's temporaries)
        last_use = {id(s): i for i, n in enumerate(self.nodes) for s in n.src}
        self.dead_after = [[id(s) for s in set(n.src) if last_use[id(s)] == i] for i, n in enumerate(self.nodes)]

    @property
    def op_count(self) -> int:
        """Torch calls per evaluation (nodes that depend on x)."""
        varying: set[int] = set()
        for n in self.nodes:
            if n.op is Op.INPUT or any(id(s) in varying for s in n.src):
                varying.add(id(n))
        return sum(1 for n in self.nodes if id(n) in varying and n.op is not Op.INPUT)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        vals: dict[int, torch.Tensor | float] = {}
        for n, dead in zip(self.nodes, self.dead_after, strict=True):
            if n.op is Op.CONST:
                v = float(n.arg)
            elif n.op is Op.INPUT:
                v = x
            else:
                args = [vals[id(s)] for s in n.src]
                if any(isinstance(a, torch.Tensor) for a in args):
                    v = TORCH_EAGER[n.op](*args, n)
                else:
                    v = _FOLD[n.op](*args, n)
            vals[id(n)] = v
            for key in dead:
                del vals[key]
        out = vals[id(self.root)]
        return out if isinstance(out, torch.Tensor) else torch.full_like(x, out)


class PaperRuntimeNorm(nn.Module):
    """`y = f(x) * weight + bias` the paper's way: the expression's ops, then one mul and one add."""

    def __init__(self, root: Node, normalized_shape: int):
        super().__init__()
        self.f = PaperRuntime(root)
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(torch.mul(self.f(x), self.weight), self.bias)
