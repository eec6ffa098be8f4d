"""One Kozax run: a layer's mapping and a seed in, the Pareto front of expressions out.

The paper's settings: operators + * tanh sigmoid neg clip(±5), at most 20 nodes, initial depth 4, NSGA-II over
the composite fitness and complexity, 10 gradient steps of constant optimization per generation, a 90/10
train/validation split. Kozax and JAX are imported here only (the `gp` extra); Kozax is used through its public
`GeneticProgramming` class and never copied. Expressions come from Kozax's raw `tree_to_string`, so constants
keep their full float32 precision (its printed Pareto front rounds them to 3 digits).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ..errors import ExprcError
from ..frontend.parse import parse
from ..ir import count_nodes, evaluate
from .expr_text import tidy_expression
from .kozax_engine import ENGINES, engine_for
from .metrics import GAMMA, anchor, score
from .operators import COMPLEXITY_MEASURES
from .search_loop import run_lockstep




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
    engine: str = "exprc"  # exprc (occupied rows, hand-written gradient), legacy (20-row scan) or kozax (Kozax's)
    constant_points: int | None = None  # None: constant steps on all training points; N: on N drawn per generation
    polish_steps: int | None = None  # Adam steps on the final front's constants (None: 100 for engine exprc, else 0)

    def __post_init__(self):
        if self.population < 2 or self.population % 2:
            raise ExprcError(f"population must be an even number >= 2, found {self.population}")
        if self.generations < 1:
            raise ExprcError(f"generations must be >= 1, found {self.generations}")
        if not 0 < self.val_fraction < 1:
            raise ExprcError(f"validation fraction must be in (0, 1), found {self.val_fraction}")
        if self.complexity not in COMPLEXITY_MEASURES:
            raise ExprcError(f"complexity must be one of {', '.join(COMPLEXITY_MEASURES)}, found {self.complexity!r}")
        if self.engine not in ENGINES:
            raise ExprcError(f"engine must be one of {', '.join(ENGINES)}, found {self.engine!r}")
        if self.constant_points is not None and (self.constant_points < 1 or self.engine != "exprc"):
            raise ExprcError("constant points must be a positive number, and only engine exprc subsamples")
        if self.polish_steps is None:
            object.__setattr__(self, "polish_steps", 100 if self.engine == "exprc" else 0)
        if self.polish_steps < 0 or (self.polish_steps and self.engine != "exprc"):
            raise ExprcError("polish steps must be >= 0, and only engine exprc polishes")

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


def _problem(x: np.ndarray, y: np.ndarray, config: SearchConfig):
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    train, val = split_train_val(len(x), config.val_fraction, config.split_seed)
    return x, y, train, val, anchor(x[train])


def run_search(x: np.ndarray, y: np.ndarray, config: SearchConfig, seed: int,
               progress: Callable[[int], None] | None = None, devices: int = 1) -> SeedResult:
    """Evolve expressions for the mapping (x, y) with one seed; score the whole front on the validation split.
    `devices`: how many local (host) devices the search's trees are spread over."""
    return run_searches([(x, y)], config, [seed], progress, devices=devices)[0]


def run_searches(mappings: list[tuple[np.ndarray, np.ndarray]], config: SearchConfig, seeds: list[int],
                 progress: Callable[[int], None] | None = None, batched: bool = False,
                 devices: int = 1) -> list[SeedResult]:
    """One search per (mapping, seed) pair, one after another or (`batched`, engine exprc) all at once."""
    start = time.perf_counter()
    problems = [_problem(x, y, config) for x, y in mappings]
    if config.engine != "exprc":
        if batched:
            raise ExprcError(f"only engine exprc runs searches batched, not {config.engine}")
        results = []
        for (x, y, train, val, delta), seed in zip(problems, seeds, strict=True):
            engine = engine_for(config)
            front = engine.run_legacy(x[train], y[train], delta, seed, config.generations, progress)
            results.append(_result(front, x, y, train, val, delta, config, seed, time.perf_counter() - start))
            start = time.perf_counter()
        return results
    engine = engine_for(config)
    inputs = [(x[train], y[train], delta) for x, y, train, _, delta in problems]
    if batched:
        fronts = run_lockstep(engine, config, inputs, seeds, True, progress)
    else:
        fronts = [run_lockstep(engine, config, [p], [s], False, progress, devices)[0]
                  for p, s in zip(inputs, seeds, strict=True)]
    seconds = (time.perf_counter() - start) / len(seeds)  # a batch's time, shared by its searches
    return [_result(front, x, y, train, val, delta, config, seed, seconds)
            for front, (x, y, train, val, delta), seed in zip(fronts, problems, seeds, strict=True)]


def _result(front, x, y, train, val, delta, config: SearchConfig, seed: int, seconds: float) -> SeedResult:
    """The front scored in float64 on the training and validation points."""
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
    return SeedResult(seed, members, delta, seconds, unparsed)
