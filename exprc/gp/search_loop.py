"""The generation loop of engine `exprc`: one search, or a batch of independent searches advanced together.

A search's state is its population and its random key; a generation is: split the key (as Kozax's `fit` does:
key, evaluation key, evolution key), evaluate and optimize constants (population_fitness.py), record the
Pareto archive (numpy, on the host), evolve with Kozax's evolution step (kozax_engine.evolve_step: Kozax's
reproduction, NSGA-II ranks from nsga2.py; not after the last generation). Seeds mean the same thing as in the
legacy loop: `PRNGKey(seed)` split into the loop key and the initial population's.

Batched (`--device gpu`): S searches (seeds, layers) are S independent states stacked on a leading axis, and
both steps are `vmap`ped over it. This is not Kozax's `num_populations`, which are islands of one search
exchanging migrants over one data set. Searches in one batch need the same number of points; each keeps its
own data, key and archive, and computes what it would compute alone (up to float rounding).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ExprcError
from .exported import ExportedStep
from .kozax_engine import engine_key
from .pareto import ParetoArchive
from .population_fitness import point_chunks

Front = list[tuple[float, float, str]]  # (complexity, training fitness, Kozax's raw text) by complexity


def _per_search(fn, batched: bool, out_shardings=None):
    """`fn` over a leading search axis: vmapped, or (a single search) applied to element 0."""
    import jax

    if batched:
        return jax.jit(jax.vmap(fn))

    def single(*args):
        out = fn(*jax.tree.map(lambda a: a[0], args))
        return jax.tree.map(lambda a: a[None], out)

    return jax.jit(single, out_shardings=out_shardings)


def _placement(devices: int):
    """(sharding of the evaluation's results, for_evaluate, for_evolve): where a single search's arrays go before
    each step. Over several host devices the evaluation shards the trees itself and takes and gives replicated
    arrays, and Kozax's evolution step runs on the first device alone (sharding it would partition Kozax's gathers
    over the devices: twice as slow). The arrays always arrive placed the same way, so each step compiles once
    (the first generation's population, placed otherwise, compiled the evaluation a second time)."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    if devices <= 1:
        return None, lambda *a: a, lambda *a: a
    mesh = Mesh(np.array(jax.local_devices()[:devices]), ("trees",))
    replicated, first = NamedSharding(mesh, PartitionSpec()), jax.local_devices()[0]
    return replicated, lambda *a: jax.device_put(a, replicated), lambda *a: jax.device_put(a, first)


def _step_functions(engine, evaluate_trees, batched: bool, replicated=None):
    """The compiled steps of a generation, made once per engine and kind (jit caches by function object: new
    closures for every search would trace Kozax's evolution step again, a minute of XLA compilation each time).
    The evolution step does not depend on the evaluator, so searches with other constant-optimization settings
    share it."""
    import jax

    cache = engine.compiled
    evolve_key, evaluate_key = ("evolve", batched), ("evaluate", id(evaluate_trees), batched, replicated)
    if evolve_key not in cache:
        def evolve(population, fitness, key):
            return engine.evolve_step(engine.gp, population, fitness, key)

        step = _per_search(evolve, batched)
        if not batched:  # traced once per machine, not once per process (exported.py)
            step = ExportedStep(step, ("evolve", engine_key(engine.config)))
        cache[evolve_key] = (step, jax.jit(jax.vmap(lambda k: jax.random.split(k, 3))))
    if evaluate_key not in cache:
        def evaluate(population, data, key):  # population (1, P, 1, R, 4): Kozax's (islands, size, trees, rows, 4)
            fitness, trees = evaluate_trees(population[0, :, 0], data, key)
            return fitness[None, :, None], trees[None, :, None]

        cache[evaluate_key] = _per_search(evaluate, batched, replicated)
    return (cache[evaluate_key], *cache[evolve_key])


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

    replicated, for_evaluate, for_evolve = _placement(1 if batched else devices)
    evaluate_all, evolve_all, split3 = _step_functions(engine, evaluate_trees, batched, replicated)
    eval_data = for_evaluate(*data)
    for g in range(generations):
        keys, eval_keys, evolve_keys = (a for a in jnp.moveaxis(split3(keys), 1, 0))
        populations, eval_keys = for_evaluate(populations, eval_keys)
        fitness, populations = evaluate_all(populations, eval_data, eval_keys)
        evaluated = populations
        if g < generations - 1:
            populations = evolve_all(*for_evolve(populations, fitness, evolve_keys))  # runs while the host records
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
