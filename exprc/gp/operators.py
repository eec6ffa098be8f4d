"""The GP operator set of the paper (+ * tanh sigmoid neg clip), as data.

Each entry names the operator as Kozax prints it (which is also how `exprc.parse` reads it: `clip(a)` takes the
layer file's bounds, ±5 by default), its arity, its sampling probability, and its cost in the two complexity
measures the search can minimize: `flops` (the paper's Appendix F: tanh 23, sigmoid 22, + and * 1; clip and neg
are free in a kernel but charged 1 here so the search does not stack them for nothing) and `nodes` (each
operator 1, the paper's node count; Kozax charges leaves nothing).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpOperator:
    name: str  # Kozax's string and exprc's function name
    arity: int
    prob: float  # relative probability of sampling it in a new tree
    flops: float
    nodes: float = 1.0


OPERATORS: tuple[GpOperator, ...] = (
    GpOperator("+", 2, 0.28, 1.0),
    GpOperator("*", 2, 0.26, 1.0),
    GpOperator("neg", 1, 0.08, 1.0),
    GpOperator("tanh", 1, 0.20, 23.0),
    GpOperator("sigmoid", 1, 0.10, 22.0),
    GpOperator("clip", 1, 0.08, 1.0),
)

COMPLEXITY_MEASURES = ("flops", "nodes")


def jax_function(op: GpOperator, clip_bounds: tuple[float, float]):
    """The jax implementation of `op` (jax imported lazily)."""
    import jax
    import jax.numpy as jnp

    lo, hi = clip_bounds
    table = {
        "+": jnp.add,
        "*": jnp.multiply,
        "neg": jnp.negative,
        "tanh": jnp.tanh,
        "sigmoid": jax.nn.sigmoid,
        "clip": lambda a: jnp.clip(a, lo, hi),
    }
    return table[op.name]


def kozax_operator_list(clip_bounds: tuple[float, float], complexity: str) -> list[dict]:
    """The operator dictionaries `kozax.GeneticProgramming(operator_list=...)` expects."""
    if complexity not in COMPLEXITY_MEASURES:
        raise ValueError(f"complexity must be one of {COMPLEXITY_MEASURES}, found {complexity!r}")
    return [{"string": op.name, "fn": jax_function(op, clip_bounds), "arity": op.arity, "prob": op.prob,
             "flops": getattr(op, complexity)} for op in OPERATORS]
