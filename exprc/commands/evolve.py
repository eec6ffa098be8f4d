"""exprc evolve: search an expression per LayerNorm with Kozax, into a resumable layers.json."""

from __future__ import annotations

import argparse
import os

from ..errors import ExprcError

HELP = "evolve one expression per layer from mappings.npz with Kozax (GP) into layers.json"
DESCRIPTION = """\
For every layer and seed, a Kozax genetic-programming search with the paper's settings: operators
+ * tanh sigmoid neg clip(+-5), at most 20 nodes, initial depth 4, NSGA-II over fitness and complexity,
10 gradient steps of constant optimization, a 90/10 train/validation split, and
fitness = MSE + gamma * mean(f(-delta)^2, f(delta)^2) with delta = 2 max|x_train|.

Each layer keeps every seed's Pareto front; the expression written is the front member with the lowest
validation fitness (or the knee, --select knee), best over seeds, constants at full precision. Beside it: the
DyT baseline tanh(alpha x) with alpha fitted by least squares, and MSE and R^2 of both on the validation points
(printed as the paper's Table 1 at the end). OUTPUT is rewritten after every finished layer, and a rerun with
the same OUTPUT skips what is done. Needs the `gp` extra (jax, kozax, tqdm).

Engines: `exprc` (default) computes Kozax's fitness and constant optimization over each tree's occupied rows
with a hand-written gradient, the Adam steps on --constant-points random training points per generation (the
fitness itself always on all of them), and at the end --polish-steps more steps on the final front's constants;
`legacy` is the previous exprc engine (Kozax's constant optimization through a 20-row scan); `kozax` uses
Kozax's own evaluator too.

Where searches run: --jobs 1 (the default) runs them one after another in this process, each spread over all CPU
cores (XLA host devices); --jobs N runs N at once in worker processes, one core each. On a 2-core CPU --jobs 1
gave 1.45x the throughput of --jobs 2 (bench/results/gp-speed.json); with many cores, try more jobs. --device gpu
--batch N vmaps N searches together on the GPU. On a cluster, --shard I/N makes one array task run its share of
the searches (the I-th of every N) into OUTPUT's partial files; afterwards one run of the same command without
--shard searches nothing, writes OUTPUT and tidies up. Compiled code (and the traced evolution step) is cached in
~/.cache/exprc/jax ($EXPRC_CACHE_DIR/jax): a second process does not compile again.

examples:
  exprc evolve mappings.npz -o layers.json
  exprc evolve mappings.npz -o layers.json --layers blocks.0.norm1 norm --seeds 1 --population 100
  exprc evolve mappings.npz -o layers.json --device gpu --batch 25
  sbatch --array=0-124 --wrap 'exprc evolve mappings.npz -o layers.json --jobs 1 --shard $SLURM_ARRAY_TASK_ID/125'
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mappings", help="the .npz written by `exprc extract` (or the paper's extract_mappings.py)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="layers.json to write (and resume)")
    p.add_argument("--seeds", type=int, default=5, help="independent searches per layer (default: %(default)s)")
    p.add_argument("--first-seed", type=int, default=1, help="seeds are FIRST .. FIRST+SEEDS-1 (default: 1)")
    p.add_argument("--population", type=int, default=500, help="population size (default: %(default)s)")
    p.add_argument("--generations", type=int, default=50, help="generations (default: %(default)s)")
    p.add_argument("--layers", nargs="+", metavar="NAME", help="only these layers (default: all)")
    p.add_argument("--jobs", type=int, default=1,
                   help="parallel searches, one process and one core each (default: 1, one search at a time "
                        "over every core)")
    p.add_argument("--select", choices=("val", "knee"), default="val",
                   help="which Pareto point to write: lowest validation fitness, or the knee (default: val)")
    p.add_argument("--max-nodes", type=int, default=20, help="tree size limit (default: %(default)s)")
    p.add_argument("--constant-steps", type=int, default=10,
                   help="gradient steps of constant optimization per generation (default: %(default)s)")
    p.add_argument("--gamma", type=float, default=0.005, help="weight of the pull-to-zero penalty (default: 0.005)")
    p.add_argument("--complexity", choices=("flops", "nodes"), default="flops",
                   help="second NSGA-II objective: the paper's FLOP costs (tanh 23, sigmoid 22, others 1) or "
                        "the operator count (default: flops)")
    p.add_argument("--engine", choices=("exprc", "legacy", "kozax"), default="exprc",
                   help="exprc (default), legacy (the previous engine: for comparisons) or kozax (Kozax's own "
                        "evaluator and constant optimization)")
    p.add_argument("--constant-points", default="4096", metavar="N",
                   help="training points drawn each generation for the constant optimization's steps, or 'all' "
                        "(Kozax's way; the fitness always uses all points) (default: %(default)s)")
    p.add_argument("--polish-steps", type=int, default=100, metavar="N",
                   help="engine exprc: after a search, N more Adam steps (all training points, decaying step size) "
                        "on the constants of its final front's trees; 0: none (default: %(default)s)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="where JAX runs the searches (default: cpu; gpu needs JAX with CUDA)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="searches vmapped together (default: 1 on cpu, 25 on gpu)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run only the I-th of every N searches (0 <= I < N): one array task of a cluster job")
    p.add_argument("--points", type=int, default=None, metavar="N",
                   help="use only the first N points of each layer (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _constant_points(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise ExprcError(f"--constant-points expects a positive number or 'all', found {text!r}")
    return int(text)


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    i, sep, n = text.partition("/")
    if not (sep and i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise ExprcError(f"--shard expects I/N with 0 <= I < N, found {text!r}")
    return int(i), int(n)


def run(args: argparse.Namespace) -> int:
    from ..gp.deps import require

    require("evolve", ("jax", "kozax", "tqdm"), "gp")

    from ..gp.jax_setup import prepare

    if args.jobs < 1 or args.seeds < 1:
        raise ExprcError("--jobs and --seeds must be at least 1")
    batch = args.batch if args.batch is not None else (25 if args.device == "gpu" else 1)
    if batch < 1:
        raise ExprcError("--batch must be at least 1")
    shard = _shard(args.shard)
    constant_points = None if args.engine != "exprc" else _constant_points(args.constant_points)
    if args.device == "cpu" and args.jobs == 1:
        prepare(host_devices=os.cpu_count() or 1)  # one search at a time: spread over every core
    elif args.jobs > 1:
        prepare(host_devices=1)

    from pathlib import Path

    from ..gp.mappings import load_mappings
    from ..gp.report import alignment_table
    from ..gp.runner import EvolvePlan, evolve
    from ..gp.search import SearchConfig

    if args.device == "gpu":
        import jax

        if jax.default_backend() != "gpu":
            raise ExprcError(f"--device gpu: JAX sees no GPU (its backend is {jax.default_backend()}); "
                             "install JAX with CUDA (pip install 'jax[cuda12]')")
    mappings = load_mappings(args.mappings)
    if args.points is not None:
        if args.points < 10:
            raise ExprcError("--points must be at least 10")
        for m in mappings.layers.values():
            m.x, m.y = m.x[: args.points], m.y[: args.points]
    config = SearchConfig(population=args.population, generations=args.generations, max_nodes=args.max_nodes,
                          constant_steps=args.constant_steps, gamma=args.gamma, complexity=args.complexity,
                          engine=args.engine, constant_points=constant_points,
                          polish_steps=args.polish_steps if args.engine == "exprc" else 0)
    layers = args.layers or mappings.names()
    plan = EvolvePlan(Path(args.mappings), mappings, layers, list(range(args.first_seed, args.first_seed + args.seeds)),
                      config, args.select, Path(args.output), args.jobs, args.device, batch, shard)
    doc = evolve(plan, progress=not args.quiet)
    if plan.shard is not None:
        print(f"array task {plan.shard[0]}/{plan.shard[1]} done; when all are, run this command without --shard "
              f"to write {args.output}")
        return 0
    print(alignment_table(doc))
    print(f"wrote {args.output}: {len(doc['layers'])} layers")
    return 0
