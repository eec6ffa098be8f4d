"""Kozax's `GeneticProgramming`, built once per configuration and process, with exprc's overrides.

Kozax (0.1.5, pinned in pyproject.toml's `gp` extra because these overrides rely on its method names and tree
layout) is used through its public class and never copied. What exprc changes, by subclassing:

- `update_pareto_front`: Kozax sorts eagerly with data-dependent shapes, recompiling every generation; exprc
  keeps the front in numpy (pareto.py);
- `evolve_population`: Kozax runs NSGA-II and a migration `cond` eagerly, recompiling the `cond` each
  generation; exprc compiles the whole step once (`evolve_step`: Kozax's duplicate punishment, complexity
  objective, reproduction and constant folding, with NSGA-II's ranks and crowding distances from nsga2.py, which
  gives Kozax's numbers in O(N log N) instead of peeling the fronts one by one; there is one population, so no
  migration);
- `evaluate_population` (engine `exprc`): the same fitness and constant optimization computed by
  population_fitness.py over the occupied rows with a hand-written gradient (engine `legacy` keeps Kozax's own
  method with exprc's 20-row scan evaluator, tree_eval.py; engine `kozax` keeps Kozax's evaluator as well).

The generation loop itself is search_loop.py's (engine `exprc`) or `run_legacy` here.
"""

from __future__ import annotations

import contextlib
import io
from typing import Callable

import numpy as np

from .kozax_fitness import chunked_data, composite_fitness, row_data
from .nsga2 import nsga2_two_objectives
from .operators import kozax_operator_list
from .pareto import ParetoArchive
from .population_fitness import CPU_CHUNK, ConstantOptimization, make_polisher, make_population_evaluator
from .tree_eval import check_against_kozax, make_tree_evaluator
from .tree_grad import make_tree_functions

ENGINES = ("exprc", "legacy", "kozax")


class Engine:
    """A Kozax GeneticProgramming object for one configuration, and exprc's compiled functions around it."""

    def __init__(self, config):
        with contextlib.redirect_stdout(io.StringIO()):  # Kozax prints its devices and data layout
            import jax
            from kozax.genetic_programming import GeneticProgramming

        self.config = config
        self.fitness = composite_fitness(config.gamma)
        self.archive: ParetoArchive | None = None
        engine = self

        class Search(GeneticProgramming):
            """Kozax's GP with exprc's cheaper steps (see the module's docstring)."""

            def update_pareto_front(self, fitness, population):
                engine.record(fitness, population)

            def evolve_population(self, populations, fitness, key):
                if self._compiled_evolve is None:
                    self._compiled_evolve = jax.jit(lambda p, f, k: evolve_step(self, p, f, k))
                return self._compiled_evolve(populations, fitness, key)

            _compiled_evolve = None

        with contextlib.redirect_stdout(io.StringIO()):
            self.gp = Search(
                num_generations=config.generations,
                population_size=config.population,
                fitness_function=self.fitness,
                operator_list=kozax_operator_list(config.clip, config.complexity),
                variable_list=[["x"]],
                max_init_depth=config.init_depth,
                max_nodes=config.max_nodes,
                tournament_size=min(config.tournament, config.population),
                complexity_objective=True,
                constant_optimization=config.constant_steps > 0,
                constant_optimization_steps=max(config.constant_steps, 1),
                optimize_constants_elite=config.constant_elite,
                device_type="cpu" if jax.default_backend() == "cpu" else "gpu",
            )
        self.evolve_step = evolve_step  # pure: jittable, vmappable
        if config.engine == "legacy":  # Kozax traces the fitness function lazily, at the first evaluation
            self.fitness.evaluate = make_tree_evaluator(self.gp, config.clip)
        self.tree_functions = make_tree_functions(self.gp, config.clip)
        self._evaluators: dict[tuple, Callable] = {}
        self.compiled: dict[tuple, tuple] = {}  # search_loop.py's compiled generation steps
        self.checked = config.engine == "kozax"
        self.flops_table = np.asarray(self.gp.operator_flops)
        self.jnp, self.random = jax.numpy, jax.random

    @staticmethod
    def chunk(layout: str) -> int | None:
        """Points per chunk: CPU-cache sized in the sequential layout, all at once in the batched (GPU) one."""
        return CPU_CHUNK if layout == "sequential" else None

    def evaluator(self, layout: str = "sequential", devices: int = 1, points: int | None = None) -> Callable:
        """population_fitness.py's `evaluate(trees, data, key)` for this configuration, a layout and the number
        of points of the constant optimization's steps (None: all)."""
        key = (layout, devices, points)
        if key not in self._evaluators:
            c = self.config
            opt = ConstantOptimization(c.constant_steps, c.constant_elite, self.gp.constant_step_size, points)
            self._evaluators[key] = make_population_evaluator(
                self.tree_functions, opt, float(self.gp.max_fitness), layout, devices, self.chunk(layout) or CPU_CHUNK)
        return self._evaluators[key]

    def polisher(self, steps: int, layout: str = "sequential") -> Callable:
        """population_fitness.py's `polish(trees, data)`, compiled (trees one after another on a CPU)."""
        key = ("polish", steps, layout)
        if key not in self._evaluators:
            import jax

            polish = make_polisher(self.tree_functions, steps, float(self.gp.max_fitness), self.gp.constant_step_size,
                                   layout)
            self._evaluators[key] = jax.jit(polish)
        return self._evaluators[key]

    def complexity(self, trees: np.ndarray) -> np.ndarray:
        """The complexity measure of each tree `(..., max_nodes, 4)` (Kozax's `operator_flops` per node)."""
        return self.flops_table[np.asarray(trees)[..., 0].astype(int)].sum(axis=-1)

    def record(self, fitness, population) -> None:
        trees = np.asarray(population)
        self.archive.add(np.asarray(fitness), self.complexity(trees[:, 0]), trees)

    def check_evaluators(self, population, delta: float) -> None:
        """Once per engine: exprc's evaluators against Kozax's own on the first population's trees."""
        if self.checked:
            return
        grid = np.linspace(-2 * delta, 2 * delta, 101)
        evaluators = [self.tree_functions.predict]
        if self.fitness.evaluate is not None:
            evaluators.append(self.fitness.evaluate)
        for evaluate in evaluators:
            check_against_kozax(self.gp, evaluate, population, grid)
        self.checked = True

    def tree_text(self, tree) -> str:
        return self.gp.tree_to_string(self.jnp.asarray(tree[0]))

    def run_legacy(self, x: np.ndarray, y: np.ndarray, delta: float, seed: int, generations: int,
                   progress: Callable[[int], None] | None = None) -> list[tuple[float, float, str]]:
        """Evolve with Kozax's `evaluate_population` (engines legacy and kozax); (complexity, fitness, text)."""
        jr = self.random
        data = (chunked_data if self.fitness.evaluate else row_data)(x, y, delta)
        self.archive = ParetoArchive(float(self.gp.max_fitness))
        self.gp.reset()
        key, init_key = jr.split(jr.PRNGKey(seed))
        population = self.gp.initialize_population(init_key)
        self.check_evaluators(population, delta)
        for g in range(generations):
            key, eval_key, evolve_key = jr.split(key, 3)
            fitness, population = self.gp.evaluate_population(population, data, eval_key)
            if g < generations - 1:
                population = self.gp.evolve_population(population, fitness, evolve_key)
            if progress is not None:
                progress(1)
        front = [(c, f, self.tree_text(tree)) for c, f, tree in self.archive.front()]
        self.archive = None
        return front


def evolve_step(gp, populations, fitness, key):
    """Kozax's `GeneticProgramming.evolve_population` for `gp`'s single population (shapes `(1, P, 1, R, 4)` and
    `(1, P, 1)`), with the ranks and crowding distances of nsga2.py; pure, so it can be jitted and vmapped."""
    import jax
    import jax.numpy as jnp

    if gp.num_populations != 1 or not gp.complexity_objective or fitness.shape[-1] != 1:
        from kozax.genetic_programming import GeneticProgramming  # islands or other objectives: Kozax's own

        return GeneticProgramming.evolve_population(gp, populations, fitness, key)
    if gp.punish_duplicates:
        populations, fitness = jax.vmap(gp.find_duplicates)(populations, fitness)
    complexity = jnp.maximum(gp.operator_flops[populations[..., 0].astype(int)].sum(axis=(-1, -2)), 5.0)
    ranks, distances = jax.vmap(nsga2_two_objectives)(jnp.concatenate([fitness, complexity[..., None]], axis=-1))
    children = gp.jit_evolve_population(populations, ranks, distances, jax.random.split(key, 1),
                                        gp.reproduction_type_probabilities, gp.reproduction_probabilities,
                                        jnp.arange(gp.population_size))
    return gp.jit_simplify_constants(children)


_ENGINES: dict[tuple, Engine] = {}  # per process: building and compiling an engine takes a while


def engine_key(config) -> tuple:
    """What of `config` Kozax's GeneticProgramming object depends on."""
    ignored = ("generations", "val_fraction", "split_seed", "constant_points", "polish_steps")  # not Kozax's
    return tuple((k, repr(v)) for k, v in sorted(config.as_json().items()) if k not in ignored)


def engine_for(config) -> Engine:
    """The process's engine for `config` (built on first use)."""
    key = engine_key(config)
    if key not in _ENGINES:
        _ENGINES[key] = Engine(config)
    return _ENGINES[key]
