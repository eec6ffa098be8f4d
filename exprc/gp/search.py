"""One Kozax run: a layer's mapping and a seed in, the Pareto front of expressions out.

The paper's settings: operators + * tanh sigmoid neg clip(±5), at most 20 nodes, initial depth 4, NSGA-II over
the composite fitness and complexity, 10 gradient steps of constant optimization per generation, a 90/10
train/validation split. Kozax and JAX are imported here only (the `gp` extra); Kozax is used through its public
`GeneticProgramming` class and never copied. Expressions come from Kozax's raw `tree_to_string`, so constants
keep their full float32 precision (its printed Pareto front rounds them to 3 digits).
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ..errors import ExprcError
from ..frontend.parse import parse
from ..ir import count_nodes, evaluate
from .expr_text import tidy_expression
from .kozax_fitness import chunked_data, composite_fitness, row_data
from .metrics import GAMMA, anchor, score
from .operators import COMPLEXITY_MEASURES, kozax_operator_list
from .pareto import ParetoArchive
from .tree_eval import check_against_kozax, make_tree_evaluator


EVALUATORS = ("fast", "kozax")


@dataclass(frozen=True)
class SearchConfig:
    population: int = 500
    generations: int = 50
    max_nodes: int = 20
    init_depth: int = 4
    constant_steps: int = 10  # gradient steps of constant optimization per generation
    constant_elite: int = 100  # how many of the fittest candidates get their constants optimized (Kozax's default)
    gamma: float = GAMMA
    val_fraction: float = 0.1
    complexity: str = "flops"  # "flops" (the paper's FLOP costs) or "nodes" (operator count)
    clip: tuple[float, float] = (-5.0, 5.0)
    tournament: int = 7
    split_seed: int = 0  # the train/validation split is the same for every search seed
    evaluator: str = "fast"  # "fast" (tree_eval.py, vectorized over points) or "kozax" (Kozax's own)

    def __post_init__(self):
        if self.population < 2 or self.population % 2:
            raise ExprcError(f"population must be an even number >= 2, found {self.population}")
        if self.generations < 1:
            raise ExprcError(f"generations must be >= 1, found {self.generations}")
        if not 0 < self.val_fraction < 1:
            raise ExprcError(f"validation fraction must be in (0, 1), found {self.val_fraction}")
        if self.complexity not in COMPLEXITY_MEASURES:
            raise ExprcError(f"complexity must be one of {', '.join(COMPLEXITY_MEASURES)}, found {self.complexity!r}")
        if self.evaluator not in EVALUATORS:
            raise ExprcError(f"evaluator must be one of {', '.join(EVALUATORS)}, found {self.evaluator!r}")

    def as_json(self) -> dict:
        d = asdict(self)
        d["clip"] = list(self.clip)
        return d


@dataclass
class SeedResult:
    """A finished search: its Pareto front as JSON-safe dicts, by increasing complexity."""

    seed: int
    front: list[dict]
    delta: float
    seconds: float
    unparsed: list[str] = field(default_factory=list)  # front members exprc could not read or score


def split_train_val(n: int, val_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, validation) of a random split of n points."""
    perm = np.random.default_rng(split_seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_val < 1:
        raise ExprcError(f"{n} points are too few to split into training and validation sets")
    return perm[n_val:], perm[:n_val]


class _Engine:
    """A Kozax GeneticProgramming object for one configuration, compiled once and reused for many runs."""

    def __init__(self, config: SearchConfig):
        with contextlib.redirect_stdout(io.StringIO()):  # Kozax prints its devices and data layout
            import jax
            import jax.numpy as jnp
            from kozax.genetic_programming import GeneticProgramming

        self.fitness = composite_fitness(config.gamma)
        archive_holder = self

        class Search(GeneticProgramming):
            """Kozax's GP with two of its steps made cheaper on a CPU, its results unchanged."""

            def update_pareto_front(self, fitness, population):
                # Kozax sorts eagerly with data-dependent shapes, recompiling each generation; numpy instead
                archive_holder.record(fitness, population)

            def evolve_population(self, populations, fitness, key):
                # Kozax runs the NSGA-II ranking and a migration `cond` eagerly, recompiling the `cond` each
                # generation (a second or more); compiled whole once here. The generation counter it reads
                # only times migration between sub-populations, and there is one population.
                if self._compiled_evolve is None:
                    self._compiled_evolve = jax.jit(super().evolve_population)
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
        if config.evaluator == "fast":  # Kozax traces the fitness function lazily, at the first evaluation
            self.fitness.evaluate = make_tree_evaluator(self.gp, config.clip)
        self.checked = config.evaluator != "fast"
        self.flops_table = np.asarray(self.gp.operator_flops)
        self.archive: ParetoArchive | None = None
        self.jnp, self.random = jnp, jax.random

    def record(self, fitness, population) -> None:
        trees = np.asarray(population)
        complexity = self.flops_table[trees[:, :, :, 0].astype(int)].sum(axis=(1, 2))
        self.archive.add(np.asarray(fitness), complexity, trees)

    def run(self, x: np.ndarray, y: np.ndarray, delta: float, seed: int, generations: int,
            progress: Callable[[int], None] | None = None) -> list[tuple[float, float, str]]:
        """Evolve; (complexity, train fitness, raw text) of the final front."""
        jnp, jr = self.jnp, self.random
        data = (chunked_data if self.fitness.evaluate else row_data)(x, y, delta)
        self.archive = ParetoArchive(float(self.gp.max_fitness))
        self.gp.reset()
        key, init_key = jr.split(jr.PRNGKey(seed))
        population = self.gp.initialize_population(init_key)
        if not self.checked:
            check_against_kozax(self.gp, self.fitness.evaluate, population, np.linspace(-2 * delta, 2 * delta, 101))
            self.checked = True
        for g in range(generations):
            key, eval_key, evolve_key = jr.split(key, 3)
            fitness, population = self.gp.evaluate_population(population, data, eval_key)
            if g < generations - 1:
                population = self.gp.evolve_population(population, fitness, evolve_key)
            if progress is not None:
                progress(1)
        front = [(c, f, self.gp.tree_to_string(jnp.asarray(tree[0]))) for c, f, tree in self.archive.front()]
        self.archive = None
        return front


_ENGINES: dict[tuple, _Engine] = {}  # per process: building and compiling an engine takes a minute


def _engine(config: SearchConfig) -> _Engine:
    ignored = ("generations", "val_fraction", "split_seed")  # not part of what the engine compiles
    key = tuple((k, repr(v)) for k, v in sorted(config.as_json().items()) if k not in ignored)
    if key not in _ENGINES:
        _ENGINES[key] = _Engine(config)
    return _ENGINES[key]


def run_search(x: np.ndarray, y: np.ndarray, config: SearchConfig, seed: int,
               progress: Callable[[int], None] | None = None) -> SeedResult:
    """Evolve expressions for the mapping (x, y) with one seed; score the whole front on the validation split."""
    start = time.perf_counter()
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    train, val = split_train_val(len(x), config.val_fraction, config.split_seed)
    delta = anchor(x[train])
    front = _engine(config).run(x[train], y[train], delta, seed, config.generations, progress)
    members, unparsed = [], []
    for complexity, kozax_fitness, raw in front:
        try:
            text = tidy_expression(raw)
            root = parse(text, config.clip)
        except ExprcError:
            unparsed.append(raw)
            continue
        f = lambda v, root=root: evaluate(root, v)  # noqa: E731
        tr, va = score(f, x[train], y[train], delta, config.gamma), score(f, x[val], y[val], delta, config.gamma)
        if not (np.isfinite(tr.fitness) and np.isfinite(va.fitness) and np.isfinite(va.r2)):
            unparsed.append(raw)  # finite in float32 on the training points, not in float64 everywhere
            continue
        members.append({
            "expr": text, "complexity": complexity, "nodes": count_nodes(root),
            "train_fitness": tr.fitness, "val_fitness": va.fitness, "kozax_fitness": kozax_fitness,
            "mse": va.mse, "r2": va.r2, "seed": seed,
        })
    return SeedResult(seed, members, delta, time.perf_counter() - start, unparsed)
