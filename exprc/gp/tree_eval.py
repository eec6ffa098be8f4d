"""The legacy engine's evaluator of Kozax trees (a scan over all 20 rows), vectorized over the data points.

Engine `exprc` uses tree_grad.py instead (occupied rows only, a hand-written gradient); this one stays for
`--engine legacy`, the comparison with the previous engine.

Kozax's own evaluator maps a whole-tree interpreter over the points, carrying the tree through a loop for each
point, and its reverse pass (constant optimization) stores that carry per node and point. Here a scan over the
nodes computes one row of values for all points per node, and the fitness function (kozax_fitness.py) feeds the
points in small checkpointed chunks. Measured on this project's 2-core CI machine, population 500 and 45,000
training points, one generation: Kozax's evaluator 38 s to evaluate + 600 s to optimize constants (9 GB);
this one 0.9 s + 22 s (0.7 GB). Same results: both compute the same float32 function.

The tree layout (documented by Kozax's `GeneticProgramming`, read through its public attributes): an array of
`max_nodes` rows `[node, child1, child2, value]`, children before parents, the root last; node 0 is an empty row
(value 0), node 1 a constant (in `value`), operators and variables are numbered by `gp.string_to_node`.
`check_against_kozax` compares both evaluators on real trees before a search, so a change of layout fails loudly.
"""

from __future__ import annotations

import numpy as np

from ..errors import ExprcError


def make_tree_evaluator(gp, clip_bounds: tuple[float, float]):
    """`evaluate(tree, x) -> f(x)` for one tree `(max_nodes, 4)` and points `x` `(n,)`, built for `gp`'s nodes."""
    import jax.numpy as jnp
    from jax import lax

    index = gp.string_to_node
    needed = {"+", "*", "neg", "tanh", "sigmoid", "clip", "x"}
    if not needed <= set(index):
        raise ExprcError(f"the fast evaluator needs exactly the nodes {sorted(needed)}, Kozax has {sorted(index)}")
    if set(index) - needed:
        raise ExprcError(f"the fast evaluator does not know the nodes {sorted(set(index) - needed)}")
    lo, hi = clip_bounds
    i_add, i_mul, i_neg, i_tanh, i_sig, i_clip, i_x = (index[k] for k in
                                                        ("+", "*", "neg", "tanh", "sigmoid", "clip", "x"))

    def node_value(n, a, b, value, x):
        # one transcendental per node: sigmoid(a) = 0.5 + 0.5 tanh(a / 2)
        t = jnp.tanh(jnp.where(n == i_sig, 0.5 * a, a))
        cases = {
            i_add: a + b,
            i_mul: a * b,
            i_neg: -a,
            i_tanh: t,
            i_sig: 0.5 + 0.5 * t,
            i_clip: jnp.clip(a, lo, hi),
            i_x: x,
            1: jnp.broadcast_to(value, x.shape),
        }
        return jnp.select([n == k for k in cases], list(cases.values()), 0.0)  # node 0 (empty row): 0

    def evaluate(tree, x):
        max_nodes = tree.shape[0]
        rows = (jnp.arange(max_nodes), tree[:, 0].astype(jnp.int32), jnp.maximum(tree[:, 1].astype(jnp.int32), 0),
                jnp.maximum(tree[:, 2].astype(jnp.int32), 0), tree[:, 3])

        def step(vals, row):  # one node: one vector operation over all points
            i, n, child1, child2, value = row
            a = lax.dynamic_index_in_dim(vals, child1, keepdims=False)
            b = lax.dynamic_index_in_dim(vals, child2, keepdims=False)
            return lax.dynamic_update_index_in_dim(vals, node_value(n, a, b, value, x), i, 0), None

        vals, _ = lax.scan(step, jnp.zeros((max_nodes, x.shape[0]), x.dtype), rows)
        return vals[max_nodes - 1]

    return evaluate


def check_against_kozax(gp, evaluate, population, x: np.ndarray, tol: float = 1e-4) -> None:
    """Raise if `evaluate` and Kozax's `gp.tree_evaluator` disagree on the trees of `population`."""
    import jax
    import jax.numpy as jnp

    trees = jnp.asarray(population).reshape(-1, *population.shape[-3:])[:64]
    xs = jnp.asarray(x, jnp.float32)
    ours = jax.vmap(lambda c: evaluate(c[0], xs))(trees)
    theirs = jax.vmap(lambda c: jax.vmap(gp.tree_evaluator, in_axes=(None, 0))(c, xs[:, None])[:, 0])(trees)
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    ok = np.isclose(ours, theirs, rtol=tol, atol=tol) | (~np.isfinite(theirs) & ~np.isfinite(ours))
    if not ok.all():
        raise ExprcError("exprc's tree evaluator disagrees with Kozax's (has Kozax's tree layout changed? exprc was "
                         "written against kozax 0.1.5); run with --engine kozax")
