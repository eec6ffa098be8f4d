"""The functions an expression may call: a table, so adding a function is one entry.

Each entry says how many expression arguments it takes and how to build IR from them. `clip` additionally takes
optional constant bounds, handled by the parser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..ir import Node, Op, unary


@dataclass(frozen=True)
class Function:
    name: str
    build: Callable[[Node], Node]
    doc: str


def _fn(name: str, op: Op, doc: str) -> Function:
    return Function(name, lambda a: unary(op, a), doc)


FUNCTIONS: dict[str, Function] = {
    "tanh": _fn("tanh", Op.TANH, "hyperbolic tangent"),
    "sigmoid": _fn("sigmoid", Op.SIGMOID, "1 / (1 + exp(-a))"),
    "exp": _fn("exp", Op.EXP, "e**a"),
    "abs": _fn("abs", Op.ABS, "|a|"),
    "neg": _fn("neg", Op.NEG, "-a"),
}

# other spellings found in GP outputs (Kozax and the paper's code)
ALIASES: dict[str, str] = {"sigm": "sigmoid", "σ": "sigmoid", "sig": "sigmoid", "Abs": "abs"}  # Abs: sympy

# `clip(a)` uses the layer file's bounds (default +-5); `clip(a, lo, hi)` names its own
CLIP = "clip"
DEFAULT_CLIP = (-5.0, 5.0)

VARIABLES = ("x", "x0")


def lookup(name: str) -> Function | None:
    return FUNCTIONS.get(ALIASES.get(name, name))


def known_names() -> list[str]:
    return sorted([*FUNCTIONS, *ALIASES, CLIP])
