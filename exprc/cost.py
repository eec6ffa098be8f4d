"""The paper's cost model (Appendix F): FLOPs per feature element and read bytes per token.

Conventions: each + - * / is 1 FLOP, x**n is n-1, tanh 23, sigmoid 22, exp 19 (range reduction 4, degree-7 Horner
14, exponent reconstruction 1), clip, neg and abs 0 (compare + select, sign bit), and so are the derivative's
indicator `inside` and `sign` (compares and selects). LayerNorm is 5d+2 FLOPs per token, DyT 24d. Reads: LayerNorm
8d bytes per token in f32 (two passes over x), element-wise 4d.

- `flops_paper` counts the expression as written: a tree, so a repeated subexpression counts each time.
- `flops_optimized` counts the IR after the optimization passes, with tanh and sigmoid lowered onto exp (the
  paper's primitive) and shifted exps shared, before exp itself is expanded: a DAG, each node once.
"""

from __future__ import annotations

from .ir import Node, Op

PAPER_FLOPS: dict[Op, int] = {
    Op.CONST: 0, Op.INPUT: 0,
    Op.ADD: 1, Op.SUB: 1, Op.MUL: 1, Op.DIV: 1,
    Op.NEG: 0, Op.ABS: 0, Op.CLIP: 0,
    Op.INSIDE: 0, Op.SIGN: 0,  # the derivative's indicator and sign: compares and selects, like clip
    Op.POW: 0,  # n-1, see op_flops
    Op.TANH: 23, Op.SIGMOID: 22, Op.EXP: 19,
    Op.TANH_APPROX: 23, Op.EXP_APPROX: 19,  # the same functions, computed by hardware
    Op.ROUND: 1, Op.CAST: 0, Op.BITCAST: 0, Op.SHL: 0,  # exponent reconstruction: the i32 add counts 1
}

LAYERNORM_READ_BYTES = 8  # per feature element, f32 (two passes)
ELEMENTWISE_READ_BYTES = 4


def op_flops(n: Node) -> int:
    if n.op is Op.POW:
        return max(n.arg - 1, 0)
    return PAPER_FLOPS[n.op]


def tree_flops(root: Node) -> int:
    """FLOPs of the expression as a tree (each occurrence of a shared subexpression counts)."""
    memo: dict[int, int] = {}
    for n in root.toposort():
        memo[id(n)] = op_flops(n) + sum(memo[id(s)] for s in n.src)
    return memo[id(root)]


def dag_flops(root: Node) -> int:
    """FLOPs of the IR as a DAG (each distinct node once): what a kernel computes."""
    return sum(op_flops(n) for n in root.toposort())


def flops_paper(ir: Node) -> int:
    return tree_flops(ir)


def cost_model_ir(ir: Node) -> Node:
    """The IR `flops_optimized` counts: optimized, transcendentals on the exp primitive, exps shared."""
    from .passes.pipeline import optimize

    return optimize(ir, "horner").after("share-exp")


def flops_optimized(ir: Node) -> int:
    return dag_flops(cost_model_ir(ir))


def layer_cost(ir: Node) -> dict[str, int]:
    """Per-element FLOPs of one layer's expression, as written and after optimization."""
    return {"flops_paper": flops_paper(ir), "flops_optimized": flops_optimized(ir)}


def layernorm_flops(d: int) -> int:
    return 5 * d + 2


def dyt_flops(d: int) -> int:
    return 24 * d


def read_bytes_per_token(d: int, kind: str = "elementwise") -> int:
    return (LAYERNORM_READ_BYTES if kind == "layernorm" else ELEMENTWISE_READ_BYTES) * d
