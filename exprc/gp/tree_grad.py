"""Kozax trees evaluated over their occupied rows only, with a hand-written reverse pass for the constants.

The tree layout is Kozax's (read through `gp.string_to_node`; see tree_eval.py): `max_nodes` rows
`[node, child1, child2, value]`, children before parents, the root in the last row; node 0 is an empty row,
node 1 a constant. A new tree's rows are packed at the end, so a tree of k nodes occupies the last k rows.

Forward: a loop from the first non-empty row to the root, one `lax.switch` per row, so each row costs exactly
its own operator on a vector of points (a tanh row one tanh, an add row one add) and the empty rows cost
nothing. Under `vmap` (the batched GPU layout) JAX turns the switch into a select over all operators, which is
what a GPU wants anyway.

Reverse: the loss is `sum_j w_j (f(x_j) - y_j)^2`; the adjoint of each row flows to its children in reverse row
order by a table of local derivatives that reuse the forward values (tanh: 1 - v², sigmoid: v(1 - v), mul: the
other operand, clip: 1 inside the bounds, 0 outside), and a constant row's gradient is the sum of its adjoint.
A tree is a tree (no shared rows), so each row has one parent and the adjoints need no atomics. This costs
about one more evaluation without transcendentals, where JAX's reverse mode through the old 20-row scan cost
16-21 evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ExprcError

NODES = ("+", "*", "neg", "tanh", "sigmoid", "clip", "x")  # the operator set of operators.py, and the variable


@dataclass(frozen=True)
class TreeFunctions:
    """Per-tree functions for points `x` `(C,)`, targets `y` and weights `w` of the same shape."""

    predict: Callable  # (tree, x) -> f(x)
    loss: Callable  # (tree, x, y, w) -> sum w (f(x) - y)^2
    loss_and_grad: Callable  # (tree, x, y, w) -> (loss, d loss / d value column (max_nodes,))


def _decode(tree):
    import jax.numpy as jnp

    nodes = tree[:, 0].astype(jnp.int32)
    child1 = jnp.maximum(tree[:, 1].astype(jnp.int32), 0)  # -1 (no child) reads row 0; its value is unused
    child2 = jnp.maximum(tree[:, 2].astype(jnp.int32), 0)
    return nodes, child1, child2, tree[:, 3], jnp.argmax(nodes != 0)  # an all-empty tree starts at row 0


def _present(children, rows: int):
    """Child indices, with -1 (no child) sent to the spare index `rows`."""
    import jax.numpy as jnp

    c = children.astype(jnp.int32)
    return jnp.where(c >= 0, c, rows)


def _branches(index: dict[str, int], clip_bounds: tuple[float, float]):
    """Forward and local-derivative functions per node id (a dense table: ids Kozax does not use give 0).

    Each function reads the rows it needs itself (a leaf reads none), so XLA fuses the reads into the operation
    instead of copying operands out of the value buffer first."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    lo, hi = clip_bounds
    missing = set(NODES) - set(index)
    extra = set(index) - set(NODES)
    if missing or extra:
        raise ExprcError(f"exprc's tree evaluator knows exactly the nodes {sorted(NODES)}; Kozax has "
                         f"{sorted(index)}")

    def row(vals, k):
        return lax.dynamic_index_in_dim(vals, k, keepdims=False)

    # forward(vals, child1, child2, value, x) -> the node's value
    def zero(vals, c1, c2, value, x):
        return jnp.zeros_like(x)

    forward = {
        0: zero,
        1: lambda vals, c1, c2, value, x: jnp.broadcast_to(value, x.shape),
        index["+"]: lambda vals, c1, c2, value, x: row(vals, c1) + row(vals, c2),
        index["*"]: lambda vals, c1, c2, value, x: row(vals, c1) * row(vals, c2),
        index["neg"]: lambda vals, c1, c2, value, x: -row(vals, c1),
        index["tanh"]: lambda vals, c1, c2, value, x: jnp.tanh(row(vals, c1)),
        index["sigmoid"]: lambda vals, c1, c2, value, x: jax.nn.sigmoid(row(vals, c1)),
        index["clip"]: lambda vals, c1, c2, value, x: jnp.clip(row(vals, c1), lo, hi),
        index["x"]: lambda vals, c1, c2, value, x: x,
    }

    # backward(vals, adj, parent, child, sibling) -> the child's adjoint, from its parent's (g = adj[parent])
    def leaf(vals, adj, p, i, sib):
        return jnp.zeros_like(row(adj, p))

    def tanh_d(vals, adj, p, i, sib):
        v = row(vals, p)
        return row(adj, p) * (1 - v * v)

    def sigmoid_d(vals, adj, p, i, sib):
        v = row(vals, p)
        return row(adj, p) * v * (1 - v)

    def clip_d(vals, adj, p, i, sib):
        a = row(vals, i)
        return jnp.where((a >= lo) & (a <= hi), row(adj, p), 0.0)

    backward = {
        0: leaf,
        1: leaf,
        index["+"]: lambda vals, adj, p, i, sib: row(adj, p),
        index["*"]: lambda vals, adj, p, i, sib: row(adj, p) * row(vals, sib),
        index["neg"]: lambda vals, adj, p, i, sib: -row(adj, p),
        index["tanh"]: tanh_d,
        index["sigmoid"]: sigmoid_d,
        index["clip"]: clip_d,
        index["x"]: leaf,
    }
    size = max(forward) + 1
    return ([forward.get(i, zero) for i in range(size)], [backward.get(i, leaf) for i in range(size)])


def make_tree_functions(gp, clip_bounds: tuple[float, float]) -> TreeFunctions:
    """The per-tree functions for the node numbering of Kozax's `gp`."""
    import jax.numpy as jnp
    from jax import lax

    forward, backward = _branches(gp.string_to_node, clip_bounds)
    last = len(forward) - 1

    def node_values(tree, x):
        """Every row's value `(max_nodes, C)`; rows before the first occupied one stay 0."""
        rows = tree.shape[0]
        nodes, child1, child2, value, start = _decode(tree)

        def body(carry):
            i, vals = carry
            v = lax.switch(jnp.clip(nodes[i], 0, last), forward, vals, child1[i], child2[i], value[i], x)
            return i + 1, lax.dynamic_update_index_in_dim(vals, v, i, 0)

        _, vals = lax.while_loop(lambda c: c[0] < rows, body, (start, jnp.zeros((rows, x.shape[0]), x.dtype)))
        return vals

    def predict(tree, x):
        return node_values(tree, x)[tree.shape[0] - 1]

    def loss(tree, x, y, w):
        return jnp.sum(w * (predict(tree, x) - y) ** 2)

    def loss_and_grad(tree, x, y, w):
        rows = tree.shape[0]
        nodes, child1, child2, _, start = _decode(tree)
        vals = node_values(tree, x)
        residual = vals[rows - 1] - y
        # each row's one parent, and its sibling (the parent's other child; -1 reads row 0, unused)
        parent = jnp.zeros(rows + 1, jnp.int32).at[_present(tree[:, 1], rows)].set(jnp.arange(rows))
        parent = parent.at[_present(tree[:, 2], rows)].set(jnp.arange(rows))[:rows]
        second = jnp.zeros(rows + 1, bool).at[_present(tree[:, 2], rows)].set(True)[:rows]
        sibling = jnp.where(second, child1[parent], child2[parent])
        root_adjoint = 2 * w * residual

        def body(carry):  # row i's adjoint from its parent's: one row written per step, as in the forward loop
            i, adj, grad = carry
            p = parent[i]
            gi = lax.switch(jnp.clip(nodes[p], 0, last), backward, vals, adj, p, i, sibling[i])
            grad = grad.at[i].set(jnp.where(nodes[i] == 1, jnp.sum(gi), 0.0))
            return i - 1, lax.dynamic_update_index_in_dim(adj, gi, i, 0), grad

        adjoint = jnp.zeros_like(vals).at[rows - 1].set(root_adjoint)
        grad = jnp.zeros(rows, vals.dtype).at[rows - 1].set(jnp.where(nodes[rows - 1] == 1, jnp.sum(root_adjoint), 0.0))
        _, _, grad = lax.while_loop(lambda c: c[0] >= start, body, (jnp.int32(rows - 2), adjoint, grad))
        return jnp.sum(w * residual ** 2), grad

    return TreeFunctions(predict, loss, loss_and_grad)
