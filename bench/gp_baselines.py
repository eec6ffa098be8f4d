"""How far the GP's expressions are from a straight line and from DyT, per layer of the tiny digits model.

    python bench/gp_baselines.py [--mappings examples/tiny_digits/mappings.npz]
                                 [--layers examples/tiny_digits/layers.json] [-o tiny-digits-r2.json]

R² on each layer's validation points (the split `exprc evolve` used: SearchConfig's val_fraction and split_seed)
of: a least-squares line and DyT (tanh(alpha x), alpha by least squares), both fitted on the training points
(exprc.gp.compare.baselines); the expression `exprc evolve` chose for the layer (layers.json); and, as a reference
of what any smooth function of x reaches, a least-squares polynomial of degree 5. A mapping the line fits as well as
the GP cannot tell a good search from a merely linear one. Results: bench/results/tiny-digits-r2.json, with the
model's accuracy (its model.json) and the GP settings layers.json records.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gp_common import EXAMPLE, ROOT, write_result  # noqa: E402


def layer_r2(x: np.ndarray, y: np.ndarray, expr: str | None) -> dict:
    """R² (validation points) of the line, DyT, a degree-5 polynomial and, if given, the GP expression."""
    import exprc
    from exprc.gp.compare import baselines
    from exprc.gp.metrics import r2
    from exprc.gp.search import SearchConfig, split_train_val
    from exprc.ir import evaluate

    config = SearchConfig()
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    train, val = split_train_val(len(x), config.val_fraction, config.split_seed)
    base = baselines(x, y, train, val, config.gamma)
    poly = np.polyfit(x[train], y[train], 5)
    row = {"line": base["line"]["r2"], "dyt": base["dyt"]["r2"], "dyt_alpha": base["dyt"]["alpha"],
           "poly5": r2(y[val], np.polyval(poly, x[val]))}
    if expr is not None:
        with np.errstate(all="ignore"):
            row["gp"] = r2(y[val], evaluate(exprc.parse(expr), x[val]))
        row["gp_expr"] = expr
    return row


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mappings", default=str(EXAMPLE / "mappings.npz"))
    ap.add_argument("--layers", default=str(EXAMPLE / "layers.json"), help="exprc evolve's output ('' for none)")
    ap.add_argument("--model-json", default=str(EXAMPLE / "model.json"), help="the model's accuracy ('' for none)")
    ap.add_argument("-o", "--output", default="tiny-digits-r2.json",
                    help="file name under bench/results/ ('' for none)")
    args = ap.parse_args()

    from exprc.gp.mappings import load_mappings

    mappings = load_mappings(args.mappings)
    doc = json.loads(Path(args.layers).read_text()) if args.layers else {"layers": {}}
    rows = {name: layer_r2(m.x, m.y, doc["layers"].get(name, {}).get("expr")) for name, m in mappings.layers.items()}
    keys = ["line", "dyt", "gp", "poly5"] if all("gp" in r for r in rows.values()) else ["line", "dyt", "poly5"]
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    print(f"{'layer':<16}" + "".join(f"{k + ' R2':>10}" for k in keys) + ("  GP-line   GP-DyT" if "gp" in keys else ""))
    for name, r in rows.items():
        print(f"{name:<16}" + "".join(f"{r[k]:10.4f}" for k in keys)
              + (f"  {r['gp'] - r['line']:+7.4f}  {r['gp'] - r['dyt']:+7.4f}" if "gp" in keys else ""))
    print(f"{'mean':<16}" + "".join(f"{mean[k]:10.4f}" for k in keys)
          + (f"  {mean['gp'] - mean['line']:+7.4f}  {mean['gp'] - mean['dyt']:+7.4f}" if "gp" in keys else ""))
    if not args.output:
        return 0
    model = json.loads(Path(args.model_json).read_text()) if args.model_json else {}
    result = {"benchmark": "R2 of a line, DyT and the GP per LayerNorm of the tiny digits model (validation points)",
              "command": "python bench/gp_baselines.py " + " ".join(sys.argv[1:]),
              "mappings": _rel(Path(args.mappings)),
              "layers_json": _rel(Path(args.layers)) if args.layers else None,
              "gp_settings": doc.get("gp", {}).get("config"), "gp_seeds": doc.get("gp", {}).get("seeds"),
              "model": {k: model.get(k) for k in ("model_kwargs", "train", "train_accuracy", "val_accuracy")},
              "mean": mean, "layers": rows}
    print(f"wrote {write_result(args.output, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
