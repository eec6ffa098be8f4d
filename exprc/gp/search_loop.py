"""The generation loop of engine `exprc`: one search, or a batch of independent searches advanced together.

A search's state is its population and its random key; a generation is: split the key (as Kozax's `fit` does:
key, evaluation key, evolution key), evaluate and optimize constants (population_fitness.py), record the
Pareto archive (numpy, on the host), evolve with Kozax's NSGA-II step (not after the last generation). Seeds
mean the same thing as in the legacy loop: `PRNGKey(seed)` split into the loop key and the initial population's.

Batched (`--device gpu`): S searches (seeds, layers) are S independent states stacked on a leading axis, and
both steps are `vmap`ped over it. This is not Kozax's `num_populations`, which are islands of one search
exchanging migrants over one data set. Searches in one batch need the same number of points; each keeps its
own data, key and archive, and computes what it would compute alone (up to float rounding).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ExprcError
from .pareto import ParetoArchive
from .population_fitness import point_chunks

Front = list[tuple[float, float, str]]  # (complexity, training fitness, Kozax's raw text) by complexity


def _per_search(fn, batched: bool):
    """`fn` over a leading search axis: vmapped, or (a single search) applied to element 0."""
    import jax

    if batched:
        return jax.jit(jax.vmap(fn))

    def single(*args):
        out = fn(*jax.tree.map(lambda a: a[0], args))
        return jax.tree.map(lambda a: a[None], out)

    return jax.jit(single)


def _step_functions(engine, evaluate_trees, batched: bool):
    """The compiled steps of a generation, made once per engine and kind (jit caches by function object: new
    closures for every search would trace Kozax's evolution step again, seconds each time)."""
    import jax

    key = ("steps", id(evaluate_trees), batched)
    cache = engine.compiled
    if key not in cache:
        def evaluate(population, data, key):  # population (1, P, 1, R, 4): Kozax's (islands, size, trees, rows, 4)
            fitness, trees = evaluate_trees(population[0, :, 0], data, key)
            return fitness[None, :, None], trees[None, :, None]

        def evolve(population, fitness, key):
            return engine.evolve_step(engine.gp, population, fitness, key)

        split3 = jax.jit(jax.vmap(lambda k: jax.random.split(k, 3)))
        cache[key] = (_per_search(evaluate, batched), _per_search(evolve, batched), split3)
    return cache[key]


def run_lockstep(engine, config, problems: list[tuple[np.ndarray, np.ndarray, float]], seeds: list[int],
                 batched: bool = False, progress: Callable[[int], None] | None = None,
                 devices: int = 1) -> list[Front]:
    """Evolve one search per (problem (x_train, y_train, delta), seed) pair; their final fronts, in order.
    Unbatched (one search), its trees are spread over `devices` local devices."""
    import jax
    import jax.numpy as jnp

    if len(problems) != len(seeds) or not seeds:
        raise ValueError("one seed per problem, at least one")
    if not batched and len(seeds) != 1:
        raise ValueError("an unbatched run is one search")
    if len({len(x) for x, _, _ in problems}) != 1:
        raise ExprcError("searches batched together need the same number of points; "
                         f"found {sorted({len(x) for x, _, _ in problems})}")
    gp, generations = engine.gp, config.generations
    layout = "batched" if batched else "sequential"
    evaluate_trees = engine.evaluator(layout, 1 if batched else devices, config.constant_points)
    data = tuple(jnp.asarray(np.stack(parts)) for parts in zip(
        *(point_chunks(x, y, delta, config.gamma, engine.chunk(layout)) for x, y, delta in problems), strict=True))
    keys, populations = [], []
    for seed in seeds:
        key, init_key = jax.random.split(jax.random.PRNGKey(seed))
        keys.append(key)
        populations.append(gp.initialize_population(init_key))
    engine.check_evaluators(populations[0], problems[0][2])
    keys, populations = jnp.stack(keys), jnp.stack(populations)
    archives = [ParetoArchive(float(gp.max_fitness)) for _ in seeds]

    evaluate_all, evolve_all, split3 = _step_functions(engine, evaluate_trees, batched)
    for g in range(generations):
        keys, eval_keys, evolve_keys = (a for a in jnp.moveaxis(split3(keys), 1, 0))
        fitness, populations = evaluate_all(populations, data, eval_keys)
        evaluated = populations
        if g < generations - 1:
            populations = evolve_all(populations, fitness, evolve_keys)  # runs while the host records
        fit, trees = np.asarray(fitness), np.asarray(evaluated)
        for s, archive in enumerate(archives):
            archive.add(fit[s].reshape(-1), engine.complexity(trees[s, 0, :, 0]), trees[s, 0])
        if progress is not None:
            progress(len(seeds))
    if config.polish_steps:
        polish = engine.polisher(config.polish_steps, layout)
        for s, archive in enumerate(archives):
            _polish_front(engine, polish, archive, tuple(a[s] for a in data))
    return [[(c, f, engine.tree_text(tree)) for c, f, tree in archive.front()] for archive in archives]


def _polish_front(engine, polish, archive: ParetoArchive, data) -> None:
    """More constant optimization for the front's trees; each complexity keeps its better version, so the front
    only moves down (and may lose members that a polished simpler one now dominates)."""
    front = archive.front()
    if not front:
        return
    trees = np.stack([np.asarray(tree)[0] for _, _, tree in front])  # (F, R, 4)
    padded = -(-len(trees) // 8) * 8  # a few shapes only: each one compiles once
    batch = np.concatenate([trees, np.repeat(trees[:1], padded - len(trees), axis=0)])
    fitness, polished = (np.asarray(a)[:len(trees)] for a in polish(batch, data))
    archive.add(fitness, engine.complexity(polished), polished[:, None])
