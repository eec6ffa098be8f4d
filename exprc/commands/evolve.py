"""exprc evolve: search an expression per LayerNorm with Kozax, into a resumable layers.json."""

from __future__ import annotations

import argparse
import os

HELP = "evolve one expression per layer from mappings.npz with Kozax (GP) into layers.json"
DESCRIPTION = """\
For every layer and seed, a Kozax genetic-programming search with the paper's settings: operators
+ * tanh sigmoid neg clip(+-5), at most 20 nodes, initial depth 4, NSGA-II over fitness and complexity,
10 gradient steps of constant optimization, a 90/10 train/validation split, and
fitness = MSE + gamma * mean(f(-delta)^2, f(delta)^2) with delta = 2 max|x_train|.

Each layer keeps every seed's Pareto front; the expression written is the front member with the lowest
validation fitness (or the knee, --select knee), best over seeds, constants at full precision. Beside it: the
DyT baseline tanh(alpha x) with alpha fitted by least squares, and MSE and R^2 of both on the validation points
(printed as the paper's Table 1 at the end). Searches run in parallel processes (--jobs); OUTPUT is rewritten
after every finished layer, and a rerun with the same OUTPUT skips what is done.
Needs the `gp` extra (jax, kozax, tqdm).

examples:
  exprc evolve mappings.npz -o layers.json
  exprc evolve mappings.npz -o layers.json --layers blocks.0.norm1 norm --seeds 1 --population 100
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mappings", help="the .npz written by `exprc extract` (or the paper's extract_mappings.py)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="layers.json to write (and resume)")
    p.add_argument("--seeds", type=int, default=5, help="independent searches per layer (default: %(default)s)")
    p.add_argument("--first-seed", type=int, default=1, help="seeds are FIRST .. FIRST+SEEDS-1 (default: 1)")
    p.add_argument("--population", type=int, default=500, help="population size (default: %(default)s)")
    p.add_argument("--generations", type=int, default=50, help="generations (default: %(default)s)")
    p.add_argument("--layers", nargs="+", metavar="NAME", help="only these layers (default: all)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel searches, one process each (default: the number of CPUs, %(default)s)")
    p.add_argument("--select", choices=("val", "knee"), default="val",
                   help="which Pareto point to write: lowest validation fitness, or the knee (default: val)")
    p.add_argument("--max-nodes", type=int, default=20, help="tree size limit (default: %(default)s)")
    p.add_argument("--constant-steps", type=int, default=10,
                   help="gradient steps of constant optimization per generation (default: %(default)s)")
    p.add_argument("--gamma", type=float, default=0.005, help="weight of the pull-to-zero penalty (default: 0.005)")
    p.add_argument("--complexity", choices=("flops", "nodes"), default="flops",
                   help="second NSGA-II objective: the paper's FLOP costs (tanh 23, sigmoid 22, others 1) or "
                        "the operator count (default: flops)")
    p.add_argument("--evaluator", choices=("fast", "kozax"), default="fast",
                   help="tree evaluator: exprc's, vectorized over points (default), or Kozax's own (slower)")
    p.add_argument("--points", type=int, default=None, metavar="N",
                   help="use only the first N points of each layer (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..gp.deps import require

    require("evolve", ("jax", "kozax", "tqdm"), "gp")

    from pathlib import Path

    from ..errors import ExprcError
    from ..gp.mappings import load_mappings
    from ..gp.report import alignment_table
    from ..gp.runner import EvolvePlan, evolve
    from ..gp.search import SearchConfig

    if args.seeds < 1 or args.jobs < 1:
        raise ExprcError("--seeds and --jobs must be at least 1")
    mappings = load_mappings(args.mappings)
    if args.points is not None:
        if args.points < 10:
            raise ExprcError("--points must be at least 10")
        for m in mappings.layers.values():
            m.x, m.y = m.x[: args.points], m.y[: args.points]
    config = SearchConfig(population=args.population, generations=args.generations, max_nodes=args.max_nodes,
                          constant_steps=args.constant_steps, gamma=args.gamma, complexity=args.complexity,
                          evaluator=args.evaluator)
    layers = args.layers or mappings.names()
    plan = EvolvePlan(Path(args.mappings), mappings, layers, list(range(args.first_seed, args.first_seed + args.seeds)),
                      config, args.select, Path(args.output), args.jobs)
    doc = evolve(plan, progress=not args.quiet)
    print(alignment_table(doc))
    print(f"wrote {args.output}: {len(doc['layers'])} layers")
    return 0
