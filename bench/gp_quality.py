"""Quality kept: the new engine against the old code on the tiny digits model's mappings, paired by layer and seed.

    python bench/gp_quality.py [--mappings examples/tiny_digits/mappings.npz] [--layers 5] [--seeds 3]
                               [--population 500] [--generations 50] [--constant-points 1024] [--margin 0.1]

Both run `exprc evolve` with the same mappings, layers, seeds and GP settings (the paper's by default): the old
code checked out from git into a temporary directory (gp_speed.OLD_COMMIT), the new engine from this tree.
Reported per (layer, seed): the validation fitness and R² of the expression each seed's search chose; per layer:
R² of a least-squares line and of DyT (tanh(alpha x), alpha by least squares) beside the GP's. The verdict
(exprc.gp.compare.paired): median paired difference of validation fitness (new - old) <= 0, and no layer's
best-of-seeds validation fitness worse than the old one by more than --margin. Results:
bench/results/gp-quality.json.

--constant-points: the committed mappings hold 5,000 points a layer (4,500 for training); the default 1,024
keeps the subsample about as small against the training set as the new default (4,096) is against the paper's
45,000.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gp_common import EXAMPLE, load, machine, write_result  # noqa: E402
from gp_speed import OLD_COMMIT, old_checkout, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mappings", default=str(EXAMPLE / "mappings.npz"))
    ap.add_argument("--layers", type=int, default=5, help="the first N layers of the file (default 5)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds FIRST..FIRST+N-1 (default 3)")
    ap.add_argument("--first-seed", type=int, default=1, help="FIRST (default 1)")
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--generations", type=int, default=50)
    ap.add_argument("--constant-points", default="1024")
    ap.add_argument("--margin", type=float, default=0.10, help="largest relative loss allowed on one layer")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--old-commit", default=OLD_COMMIT)
    ap.add_argument("--old-results", metavar="JSON", nargs="+",
                    help="take the old side from earlier results of this benchmark (same mappings and settings; "
                         "together holding every layer and seed asked for) instead of running the old code again "
                         "(it takes ~90 s a search)")
    ap.add_argument("-o", "--output", default="gp-quality.json", help="file name under bench/results/")
    args = ap.parse_args()

    from exprc.gp.compare import baselines, paired
    from exprc.gp.mappings import load_mappings
    from exprc.gp.search import SearchConfig, split_train_val

    mappings = load_mappings(args.mappings)
    layers = mappings.names()[: args.layers]
    common = ["evolve", args.mappings, "--layers", *layers, "--seeds", str(args.seeds), "--first-seed",
              str(args.first_seed), "--population",
              str(args.population), "--generations", str(args.generations), "--jobs", str(args.jobs), "--quiet"]
    runs = []
    with tempfile.TemporaryDirectory(prefix="gp-quality-") as tmp:
        tmp = Path(tmp)
        if args.old_results:
            earlier = [json.loads(Path(f).read_text()) for f in args.old_results]
            old = old_side(earlier, layers, range(args.first_seed, args.first_seed + args.seeds))
            runs += [{**e["runs"][0], "from": f} for e, f in zip(earlier, args.old_results, strict=True)]
        else:
            old_tree = old_checkout(args.old_commit, tmp)
            env = {**os.environ, "PYTHONPATH": str(old_tree), "EXPRC_CACHE_DIR": str(tmp / "cache-old")}
            runs.append(timed([sys.executable, "-m", "exprc", *common, "-o", str(tmp / "old.json")], env,
                              f"old code ({args.old_commit})", code=old_tree / "exprc"))
            old = json.loads((tmp / "old.json").read_text())
        env = {**os.environ, "EXPRC_CACHE_DIR": str(tmp / "cache-new")}
        runs.append(timed([sys.executable, "-m", "exprc", *common, "--constant-points", args.constant_points,
                           "-o", str(tmp / "new.json")], env, "new engine"))
        new = json.loads((tmp / "new.json").read_text())
    result = paired(old, new, args.margin)
    config = SearchConfig()
    for name in layers:
        m = mappings.layers[name]
        train, val = split_train_val(len(m.x), config.val_fraction, config.split_seed)
        result["layers"][name].update(baselines(m.x, m.y, train, val, config.gamma))
        result["layers"][name]["new_expr"] = new["layers"][name]["expr"]
    doc = {"benchmark": "paired quality, new engine vs old code", "machine": machine(), "load_end": load(),
           "command": "python bench/gp_quality.py " + " ".join(sys.argv[1:]), "mappings": args.mappings,
           "runs": runs, **result}
    path = write_result(args.output, doc)
    print(f"{'layer':<16} {'old val':>9} {'new val':>9} {'rel':>7}  {'line R2':>7} {'DyT R2':>7} {'old R2':>7} "
          f"{'new R2':>7}")
    for name, r in result["layers"].items():
        print(f"{name:<16} {r['old']:9.5f} {r['new']:9.5f} {r['relative']:+7.1%}  {r['line']['r2']:7.4f} "
              f"{r['dyt']['r2']:7.4f} {r['old_r2']:7.4f} {r['new_r2']:7.4f}")
    print(f"pairs: {result['n_pairs']}, new better in {result['new_better_pairs']}; median diff "
          f"{result['median_diff']:+.3g}; worst layer {result['worst_layer']} {result['worst_relative']:+.1%} "
          f"(margin {args.margin:.0%}): {'KEPT' if result['kept'] else 'NOT KEPT'}")
    print(f"wrote {path}")
    return 0 if result["kept"] else 1


def old_side(earlier: list[dict], layers: list[str], seeds: range) -> dict:
    """The old code's per-seed and chosen validation fitness and R² from earlier results of this benchmark, in
    the shape of `exprc evolve`'s output that `paired` reads; together they must hold every (layer, seed) asked
    for. A layer's chosen expression is its best seed's (selection `val`)."""
    out: dict = {"layers": {}}
    for name in layers:
        rows = {p["seed"]: p for e in earlier for p in e["pairs"] if p["layer"] == name}
        missing = [s for s in seeds if s not in rows]
        if missing:
            raise SystemExit(f"--old-results: no old result for {name}, seeds {missing}")
        picked = [rows[s] for s in seeds]
        best = min(picked, key=lambda p: p["old"])
        out["layers"][name] = {"val_fitness": best["old"], "r2": best["old_r2"],
                               "seeds": [{"seed": p["seed"], "val_fitness": p["old"], "r2": p["old_r2"]}
                                         for p in picked]}
    return out


if __name__ == "__main__":
    sys.exit(main())
