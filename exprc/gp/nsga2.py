"""NSGA-II ranks and crowding distances for two objectives in O(N log N), the same numbers as Kozax's `nsga2`.

Kozax 0.1.5's `nsga2` (genetic_operators/reproduction.py) peels the fronts one by one: each front costs an N x N
count of dominators and two argsorts for its crowding distances, so a population of 500 with ~100 fronts spends
tens of milliseconds per generation there. The search has exactly two objectives (fitness, complexity), for which
both results have a cheap exact form:

- **Ranks.** Sort the points lexicographically by (objective 1, objective 2, index). Every point that dominates
  point i comes before it, and the front of i is the length of the longest chain of dominators ending at i. Walking
  the sorted points, keep for each front k the lexicographically smallest (objective 2, objective 1) of its members
  so far: a member of front k dominates i exactly when that minimum is lexicographically below i's
  (objective 2, objective 1), and if front k holds a dominator so do all fronts before it, so i's front is the
  number of fronts that dominate it. One pass of N steps, each O(N) vector work on a tiny array.
- **Crowding distances.** For each objective, one stable sort by (front, value, index) puts each front's members
  in the order Kozax's stable argsort gives them; a front's first and last members get infinity, the others
  (next - previous) / range, range = max(max - min, 1e-10) over the front (Kozax's max also counts 0 when the
  front is not the whole population), summed over the objectives in float32 as Kozax sums them.

Dominance is Kozax's: j dominates i when j is no worse in both objectives and better in one; identical points do
not dominate each other and share a front. tests/test_gp_nsga2.py checks ranks and distances against Kozax's
`nsga2` on random populations with many ties.
"""

from __future__ import annotations


def nsga2_two_objectives(metrics):
    """(ranks int32 (N,), crowding distances float32 (N,)) of `metrics` (N, 2), lower is better in both."""
    import jax.numpy as jnp
    from jax import lax

    n = metrics.shape[0]
    a, b = metrics[:, 0], metrics[:, 1]
    order = jnp.lexsort((b, a))  # by a, then b, then index
    sa, sb = a[order], b[order]

    def place(k, carry):
        ranks, front_b, front_a = carry  # per front: the lexicographically smallest (b, a) of its members so far
        ai, bi = sa[k], sb[k]
        dominates = (front_b < bi) | ((front_b == bi) & (front_a < ai))
        r = jnp.sum(dominates, dtype=jnp.int32)
        smaller = (bi < front_b[r]) | ((bi == front_b[r]) & (ai < front_a[r]))
        front_b = front_b.at[r].set(jnp.where(smaller, bi, front_b[r]))
        front_a = front_a.at[r].set(jnp.where(smaller, ai, front_a[r]))
        return ranks.at[k].set(r), front_b, front_a

    inf = jnp.full(n, jnp.inf, metrics.dtype)
    sorted_ranks, _, _ = lax.fori_loop(0, n, place, (jnp.zeros(n, jnp.int32), inf, inf))
    ranks = jnp.zeros(n, jnp.int32).at[order].set(sorted_ranks)
    distances = _crowding(a, ranks) + _crowding(b, ranks)
    return ranks, distances


def _crowding(values, ranks):
    """One objective's crowding contribution per point: its front's neighbours' spread over the front's range."""
    import jax.numpy as jnp

    n = values.shape[0]
    order = jnp.lexsort((values, ranks))  # by front, then value, then index: Kozax's stable argsort per front
    v, r = values[order], ranks[order]
    first = jnp.concatenate([jnp.array([True]), r[1:] != r[:-1]])
    last = jnp.concatenate([r[1:] != r[:-1], jnp.array([True])])
    start = jnp.zeros(n, jnp.int32).at[r].max(jnp.where(first, jnp.arange(n), 0))  # front -> first position
    end = jnp.zeros(n, jnp.int32).at[r].max(jnp.where(last, jnp.arange(n), 0))  # front -> last position
    lo, hi = v[start[r]], v[end[r]]
    whole = (end[r] - start[r] + 1) == n
    hi = jnp.where(whole, hi, jnp.maximum(hi, 0.0))
    span = jnp.maximum(hi - lo, 1e-10)
    prev, nxt = jnp.roll(v, 1), jnp.roll(v, -1)
    inner = (nxt - prev) * (1 / span)  # XLA turns Kozax's division by the front's range into this product
    contribution = jnp.where(first | last, jnp.inf, inner).astype(values.dtype)
    return jnp.zeros(n, values.dtype).at[order].set(contribution)
