"""The paper in miniature: its Table 2 and Figure 3 for a tiny ViT trained on scikit-learn's digits, on a CPU.

    python -m exprc.train.miniature -o runs/digits

1. the digits as an ImageFolder, the model's own 80/20 split (`exprc.data.digits`): OUT/data/{train,val}
2. one expression per LayerNorm: the model's committed `layers.json` (what `exprc evolve` made of its committed
   mapping file); with --evolve, or when there is none, `exprc evolve` on the mapping file here (`exprc extract`
   first when there is no mapping file either): OUT/layers.json; --layers FILE takes that file
3. `exprc realign` of the trained LayerNorm model: LN, GP-A, GP-F, GP-D, DyT-A, DyT-F, DyT-D, each from the
   same weights; -D's teacher is that model: OUT/runs/<label>/
4. OUT/table.md (Table 2: top-1/top-5 of the original model, at epoch 0 (the "shock") and best, GP and DyT side
   by side), OUT/fig3.png (Figure 3), OUT/summary.json

What differs from the paper, for 8x8 digits and a 117k-parameter model: no augmentation (DeiT's crops and
RandAugment erase an 8x8 digit; the model was trained without), evaluation without a center crop (crop 1.0, as
it was trained), batch 64, and Table 3's learning rates times --lr-scale (10: the paper's grid search was for
ViT-B at batch 512). A rerun reuses finished runs and resumes unfinished ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..atomic_write import atomic_write
from ..errors import ExprcError
from .config import TABLE3, RealignConfig
from .metrics import read_log

RUNS = (("ln", "F"), ("gp", "A"), ("gp", "F"), ("gp", "D"), ("dyt", "A"), ("dyt", "F"), ("dyt", "D"))
MODEL_DIR = Path(__file__).resolve().parents[2] / "examples" / "tiny_digits"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m exprc.train.miniature", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="runs/digits", help="directory for everything (default: %(default)s)")
    p.add_argument("--model-dir", default=str(MODEL_DIR),
                   help="the trained model: model.safetensors and model.json (default: examples/tiny_digits)")
    p.add_argument("--mappings", help="mapping file for evolve (default: MODEL_DIR/mappings.npz, else extracted)")
    p.add_argument("--layers", help="a layers.json to use (default: MODEL_DIR/layers.json)")
    p.add_argument("--evolve", action="store_true", help="search the expressions here instead of MODEL_DIR's")
    p.add_argument("--epochs", type=int, default=10, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=64, help="default: %(default)s")
    p.add_argument("--lr-scale", type=float, default=10.0, help="Table 3's rates times this (default: 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--population", type=int, default=200, help="evolve: population (default: %(default)s)")
    p.add_argument("--generations", type=int, default=20, help="evolve: generations (default: %(default)s)")
    p.add_argument("--evolve-seeds", type=int, default=1, help="evolve: seeds per layer (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="evolve: parallel searches (default: %(default)s)")
    return p.parse_args(argv)


def _cli(*args: str) -> None:
    from ..cli import main

    if main(list(args)) != 0:
        raise ExprcError(f"`exprc {' '.join(args[:1])}` failed (its error is above)")


def _model(model_dir: Path) -> tuple[str, dict, Path]:
    info_path, weights = model_dir / "model.json", model_dir / "model.safetensors"
    if not info_path.is_file() or not weights.is_file():
        raise ExprcError("needs the trained tiny digits model (model.json and model.safetensors; `exprc` issue 12 "
                         "commits it under examples/tiny_digits/), or --model-dir", where=str(model_dir))
    info = json.loads(info_path.read_text())
    return info["model"], dict(info.get("model_kwargs") or info.get("model_args") or {}), weights


def prepare(args: argparse.Namespace, out: Path) -> tuple[str, dict, Path, Path]:
    """The data, the model and the layer file; each made only if not there yet."""
    from ..data.digits import write_image_folder

    name, kwargs, weights = _model(Path(args.model_dir))
    for split in ("train", "val"):
        if not (out / "data" / split).is_dir():
            write_image_folder(out / "data" / split, split)
    committed = Path(args.model_dir) / "layers.json"
    if args.layers or (committed.is_file() and not args.evolve):
        return name, kwargs, weights, Path(args.layers or committed)
    mappings = Path(args.mappings) if args.mappings else Path(args.model_dir) / "mappings.npz"
    if not mappings.is_file():
        mappings = out / "mappings.npz"
        if not mappings.is_file():
            model_args = [a for k, v in kwargs.items() for a in ("--model-arg", f"{k}={json.dumps(v)}")]
            _cli("extract", "--model", name, *model_args, "--checkpoint", str(weights), "--images",
                 str(out / "data" / "train"), "--max-images", "100000", "--points", "20000", "-o", str(mappings))
    layers = out / "layers.json"
    _cli("evolve", str(mappings), "-o", str(layers), "--seeds", str(args.evolve_seeds), "--population",
         str(args.population), "--generations", str(args.generations), "--jobs", str(args.jobs))  # resumes
    return name, kwargs, weights, layers


def run_config(args, out: Path, name: str, kwargs: dict, weights: Path, layers: Path, norm: str,
               variant: str) -> RealignConfig:
    d = TABLE3[(norm, variant)]
    scale = args.lr_scale
    config = RealignConfig(
        output="", model=name, model_args=kwargs, checkpoint=str(weights), norm=norm,
        layers=str(layers) if norm == "gp" else None, variant=variant, epochs=args.epochs,
        batch_size=args.batch_size, lr_backbone=d.lr_backbone * scale if d.lr_backbone else None,
        lr_affine=d.lr_affine * scale, lr_alpha=d.lr_alpha * scale if d.lr_alpha else None,
        data=str(out / "data"), augment=False, crop_pct=1.0, workers=0, seed=args.seed, checkpoint_every=0,
        eval_original=norm == "ln")  # one evaluation of the original model is enough
    config.output = str(out / "runs" / config.label.lower())
    return config


def realign_all(args, out: Path, name, kwargs, weights, layers) -> list[dict]:
    """Every run of RUNS, finished ones reused, unfinished ones resumed; their logs."""
    from .run import realign

    logs = []
    for norm, variant in RUNS:
        config = run_config(args, out, name, kwargs, weights, layers, norm, variant)
        log_path = Path(config.output) / "log.json"
        done = log_path.is_file() and len(read_log(log_path)["epochs"]) > args.epochs
        if not done:
            config.resume = (Path(config.output) / "checkpoint.pt").is_file()
            print(f"== {config.label} ({'resumed' if config.resume else 'started'})", flush=True)
            realign(config)
        logs.append(read_log(log_path))
    return logs


def _best(doc: dict) -> dict:
    return max(doc["epochs"][1:], key=lambda r: r["top1"])


def table(logs: list[dict], args, layers: str | Path = "layers.json") -> str:
    """Markdown: the paper's Table 2 (plus the epoch-0 shock), GP and DyT side by side."""
    by = {doc["label"]: doc for doc in logs}
    original = next(doc["original"] for doc in logs if doc.get("original"))
    lines = [f"Original LayerNorm model, no fine-tuning: top-1 **{original['top1']:.2f}%**, top-5 "
             f"{original['top5']:.2f}% ({original['images']} validation images)", "",
             "| variant | GP epoch 0 | GP best top-1 | GP top-5 | DyT epoch 0 | DyT best top-1 | DyT top-5 |",
             "|---|---|---|---|---|---|---|"]
    ln = by["LN"]
    lines.append(f"| LN (kept; fine-tuned) | {ln['epochs'][0]['top1']:.2f} | {_best(ln)['top1']:.2f} | "
                 f"{_best(ln)['top5']:.2f} | | | |")
    names = {"A": "-A (affine only)", "F": "-F (full)", "D": "-D (full + distillation)"}
    for variant in "AFD":
        cells = []
        for kind in ("GP", "DyT"):
            doc = by[f"{kind}-{variant}"]
            best = _best(doc)
            cells += [f"{doc['epochs'][0]['top1']:.2f}", f"{best['top1']:.2f} (ep {best['epoch']})",
                      f"{best['top5']:.2f}"]
        lines.append(f"| {names[variant]} | " + " | ".join(cells) + " |")
    lines += ["", f"top-1/top-5 in %, {args.epochs} epochs, batch {args.batch_size}, Table 3's rates x "
                  f"{args.lr_scale:g}, seed {args.seed}, expressions from {layers}; epoch 0 = right after the "
                  "replacement."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .plot import plot_accuracy

    args = parse_args(argv)
    out = Path(args.output)
    try:
        name, kwargs, weights, layers = prepare(args, out)
        logs = realign_all(args, out, name, kwargs, weights, layers)
        text = table(logs, args, layers)
        with atomic_write(out / "table.md") as f:
            f.write(text + "\n")
        with atomic_write(out / "summary.json") as f:
            json.dump({"layers": str(layers), "runs": {d["label"]: {"original": d["original"], "epochs": d["epochs"]}
                                                      for d in logs}}, f, indent=1)
        plot_accuracy([d for d in logs if d["label"] in ("LN", "GP-A", "GP-F", "GP-D", "DyT-A")],
                      out / "fig3.png")
    except ExprcError as e:
        print(f"miniature: error: {e.pretty()}", file=sys.stderr)
        return 2
    print(text)
    print(f"wrote {out / 'table.md'}, {out / 'fig3.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
