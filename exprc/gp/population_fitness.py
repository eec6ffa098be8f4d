"""One generation's evaluation: every tree's composite fitness, then Kozax's constant optimization of the elite.

The same computation as Kozax's `GeneticProgramming.evaluate_population` with `constant_optimization=True`
(Kozax 0.1.5): every candidate's fitness on all training points; the `elite` fittest get `steps` Adam steps
(optax.adam, step size 0.1, Kozax's defaults) on their constants, and each keeps the best of the constants it
went through (the fitness before each step and after the last one, all on all training points, first best on
ties); NaN and infinite fitness become `max_fitness`, and fitness is capped there. Only how it is computed
differs: tree_grad.py's evaluator over the occupied rows and its hand-written gradient, instead of reverse-mode
autodiff through a loop over all 20 rows.

The composite fitness `MSE + gamma * mean(f(-delta)^2, f(delta)^2)` is one weighted sum of squares: the points
with weight 1/n and the two anchors ±delta with target 0 and weight gamma/2, laid out in chunks of `chunk`
points (zero weight pads the last one). On a CPU the chunks keep a tree's rows in cache; the batched GPU layout
uses one chunk for all points.

Layouts: `sequential` maps over the trees one after another (CPU: each row then runs only its own operator)
and shards them over the local devices (two XLA host devices use both cores of a 2-core machine); `batched`
vmaps over the trees (GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .tree_grad import TreeFunctions

CPU_CHUNK = 4096  # points per chunk on a CPU: a 20-row tree's values stay in the L2 cache
LAYOUTS = ("sequential", "batched")


def point_chunks(x: np.ndarray, y: np.ndarray, delta: float, gamma: float, chunk: int | None) -> tuple:
    """(xs, ys, ws) float32 arrays `(chunks, chunk)`: the points (weight 1/n), then the anchors -delta and delta
    (target 0, weight gamma/2), zero-weight padding. `chunk=None`: one chunk holding everything."""
    n = len(x)
    xs = np.concatenate([np.asarray(x, np.float32), np.array([-delta, delta], np.float32)])
    ys = np.concatenate([np.asarray(y, np.float32), np.zeros(2, np.float32)])
    ws = np.concatenate([np.full(n, 1.0 / n, np.float32), np.full(2, gamma / 2, np.float32)])
    chunk = chunk or len(xs)
    padded = -(-len(xs) // chunk) * chunk
    out = []
    for a in (xs, ys, ws):
        p = np.zeros(padded, np.float32)
        p[:len(a)] = a
        out.append(p.reshape(-1, chunk))
    return tuple(out)


@dataclass(frozen=True)
class ConstantOptimization:
    steps: int = 10  # Adam steps per generation (Kozax: constant_optimization_steps)
    elite: int = 100  # how many of the fittest trees get them (Kozax: optimize_constants_elite)
    step_size: float = 0.1  # Kozax's constant_step_size
    points: int | None = None  # None: the steps see all points (Kozax); N: a random N of them each generation


def subsample_chunks(data: tuple, key, points: int, chunk: int) -> tuple:
    """`points` of the training points of `data` (drawn without replacement with `key`) plus its two anchors,
    in chunks of `chunk`; the weights are rescaled so that the sum still estimates the same composite fitness."""
    import jax
    import jax.numpy as jnp

    xs, ys, ws = (a.reshape(-1) for a in data)
    points = min(points, xs.shape[0] - 2)  # no more than there are places for
    n = jnp.sum(ws > 0) - 2  # the anchors are the last two weighted entries
    pick = jax.random.choice(key, xs.shape[0] - 2, (points,), replace=False,
                             p=(jnp.arange(xs.shape[0] - 2) < n) / n)
    anchors = jnp.stack([n, n + 1])
    idx = jnp.concatenate([pick, anchors])
    drawn = jnp.arange(points) < n  # with fewer than `points` points, the padding comes last: weight 0
    w = jnp.concatenate([jnp.where(drawn, 1.0 / jnp.minimum(points, n), 0.0).astype(ws.dtype), ws[anchors]])
    count = -(-(points + 2) // chunk)
    chunk = -(-(points + 2) // count)  # equal chunks, none of them mostly padding
    out = [jnp.zeros(count * chunk, a.dtype).at[:points + 2].set(v) for a, v in ((xs, xs[idx]), (ys, ys[idx]), (ws, w))]
    return tuple(a.reshape(count, chunk) for a in out)


def _fitness_functions(tf: TreeFunctions, max_fitness: float):
    """(sanitize, total_loss, total_loss_and_grad): a tree's composite fitness summed over the chunks of `data`."""
    import jax.numpy as jnp
    from jax import lax

    def sanitize(f):
        return jnp.minimum(jnp.where(jnp.isfinite(f), f, max_fitness), max_fitness)

    def total_loss(tree, data):
        def chunk(total, xyw):
            return total + tf.loss(tree, *xyw), None
        return lax.scan(chunk, jnp.float32(0), data)[0]

    def total_loss_and_grad(tree, data):
        def chunk(acc, xyw):
            loss, grad = tf.loss_and_grad(tree, *xyw)
            return (acc[0] + loss, acc[1] + grad), None
        return lax.scan(chunk, (jnp.float32(0), jnp.zeros(tree.shape[0], tree.dtype)), data)[0]

    return sanitize, total_loss, total_loss_and_grad


def _adam_optimizer(tf: TreeFunctions, max_fitness: float, steps: int, learning_rate) -> Callable:
    """`optimize(tree, data) -> (fitness, tree)`: Adam steps on the constants, keeping the best constants seen (the
    fitness before each step and after the last, first best on ties), as Kozax's constant optimization does."""
    import jax.numpy as jnp
    import optax
    from jax import lax

    sanitize, total_loss, total_loss_and_grad = _fitness_functions(tf, max_fitness)
    adam = optax.adam(learning_rate)

    def optimize(tree, data):
        def step(carry, _):
            value, state, best_loss, best_value = carry
            loss, grad = total_loss_and_grad(tree.at[:, 3].set(value), data)
            loss = sanitize(loss)
            better = loss < best_loss
            updates, state = adam.update(grad, state, value)
            return (value + updates, state, jnp.where(better, loss, best_loss),
                    jnp.where(better, value, best_value)), None

        value = tree[:, 3]
        init = (value, adam.init(value), jnp.float32(jnp.inf), value)
        (value, _, best_loss, best_value), _ = lax.scan(step, init, None, length=steps)
        last = sanitize(total_loss(tree.at[:, 3].set(value), data))
        better = last < best_loss
        return jnp.where(better, last, best_loss), tree.at[:, 3].set(jnp.where(better, value, best_value))

    return optimize


def make_population_evaluator(tf: TreeFunctions, opt: ConstantOptimization, max_fitness: float,
                              layout: str = "sequential", devices: int = 1, chunk: int = CPU_CHUNK) -> Callable:
    """`evaluate(trees (P, R, 4), data (xs, ys, ws), key) -> (fitness (P,), trees)`, pure and jittable (vmappable
    over independent searches: a leading axis on every argument). `key` draws the subsample when `opt.points`."""
    import jax
    import jax.numpy as jnp

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, found {layout!r}")
    sanitize, total_loss, _ = _fitness_functions(tf, max_fitness)
    optimize = _adam_optimizer(tf, max_fitness, opt.steps, opt.step_size)

    if layout == "batched":
        def map_trees(f, trees, data):
            return jax.vmap(f, in_axes=(0, None))(trees, data)
    else:
        def map_trees(f, trees, data):
            return _sharded_map(f, trees, data, devices)

    def evaluate(trees, data, key):
        fitness = sanitize(map_trees(total_loss, trees, data))
        if opt.steps > 0 and opt.elite > 0:
            elite = jnp.argsort(fitness)[:min(opt.elite, trees.shape[0])]
            if opt.points is None or opt.points >= data[0].size - 2:  # as many points as there are: all
                optimized_fitness, optimized = map_trees(optimize, trees[elite], data)
            else:  # steps on a subsample; the chosen constants are kept only if better on all points
                chosen = map_trees(optimize, trees[elite], subsample_chunks(data, key, opt.points, chunk))[1]
                chosen_fitness = sanitize(map_trees(total_loss, chosen, data))
                better = chosen_fitness < fitness[elite]
                optimized_fitness = jnp.where(better, chosen_fitness, fitness[elite])
                optimized = jnp.where(better[:, None, None], chosen, trees[elite])
            trees = trees.at[elite].set(optimized)
            fitness = fitness.at[elite].set(optimized_fitness)
        return fitness, trees

    return evaluate


def make_polisher(tf: TreeFunctions, steps: int, max_fitness: float, step_size: float = 0.1,
                  layout: str = "sequential") -> Callable:
    """`polish(trees (F, R, 4), data) -> (fitness, trees)`: after a search, `steps` more Adam steps on all training
    points for each tree of its Pareto front, the step size decaying from `step_size` to 1% of it (cosine), the
    best constants kept (never worse than before). The trees' shapes, and so their complexity, do not change."""
    import jax
    import optax
    from jax import lax

    optimize = _adam_optimizer(tf, max_fitness, steps, optax.cosine_decay_schedule(step_size, steps, alpha=0.01))
    if layout == "batched":
        return jax.vmap(optimize, in_axes=(0, None))
    return lambda trees, data: lax.map(lambda t: optimize(t, data), trees)


def _sharded_map(f, trees, data, devices: int):
    """`lax.map(f)` over the trees, split evenly over the first `devices` local devices (padding with copies)."""
    import jax
    from jax import lax
    from jax.sharding import Mesh, PartitionSpec as P

    def run(ts, d):
        return lax.map(lambda t: f(t, d), ts)

    if devices <= 1:
        return run(trees, data)
    n = trees.shape[0]
    padded = -(-n // devices) * devices
    if padded != n:
        trees = jax.numpy.concatenate([trees, jax.numpy.repeat(trees[:1], padded - n, axis=0)])
    mesh = Mesh(np.array(jax.local_devices()[:devices]), ("trees",))
    out = jax.shard_map(run, mesh=mesh, in_specs=(P("trees"), P()), out_specs=P("trees"), check_vma=False)(trees, data)
    return jax.tree.map(lambda a: a[:n], out)
