"""Top-1/top-5 accuracy over the validation set (counts summed across processes), and the run's log.

The log is one record per epoch: epoch 0 is the student right after the replacement (the paper's "shock"), epoch
k after k epochs of training; `original` is the untouched LayerNorm model on the same images. Rank 0 rewrites
`log.json` (format exprc.realign-log/1: config, label, original, epochs) and `log.csv` whole after every epoch.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from ..atomic_write import atomic_write
from .distributed import World, sum_across

LOG_FORMAT = "exprc.realign-log/1"
CSV_COLUMNS = ("epoch", "top1", "top5", "val_loss", "train_loss", "images_per_s", "seconds", "steps")


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many rows have their label among the k highest logits, for each k (k capped at the classes)."""
    top = logits.topk(min(max(ks), logits.shape[-1]), dim=-1).indices
    hit = top == labels[:, None]
    return [int(hit[:, :k].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate(model: nn.Module, loader, world: World, autocast=nullcontext) -> dict:
    """top1, top5 (percent) and mean cross-entropy over every validation image (each process its share)."""
    was_training = model.training
    model.eval()
    sums = [0.0, 0.0, 0.0, 0.0]  # correct@1, correct@5, loss sum, images
    for images, labels in loader:
        images = images.to(world.device, non_blocking=True)
        labels = labels.to(world.device, non_blocking=True)
        with autocast():
            logits = model(images)
        c1, c5 = topk_correct(logits, labels)
        loss = nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        sums = [sums[0] + c1, sums[1] + c5, sums[2] + float(loss), sums[3] + len(labels)]
    model.train(was_training)
    c1, c5, loss, n = sum_across(world, sums)
    return {"top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "val_loss": loss / n, "images": int(n)}


def log_document(config: dict, label: str, original: dict | None, history: list[dict]) -> dict:
    return {"format": LOG_FORMAT, "label": label, "config": config, "original": original, "epochs": history}


def write_log(output: Path, doc: dict) -> None:
    """log.json and log.csv in `output`, each replaced whole."""
    with atomic_write(output / "log.json") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in doc["epochs"]:
        writer.writerow({k: _cell(record.get(k)) for k in CSV_COLUMNS})
    with atomic_write(output / "log.csv") as f:
        f.write(buf.getvalue())


def _cell(value):
    return "" if value is None else round(value, 6) if isinstance(value, float) else value


def read_log(path: str | Path) -> dict:
    """A log.json (or the run directory holding one); an ExprcError for anything else."""
    from ..errors import ExprcError

    path = Path(path)
    if path.is_dir():
        path = path / "log.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ExprcError(f"cannot read the realign log: {e}", where=str(path)) from None
    if not isinstance(doc, dict) or doc.get("format") != LOG_FORMAT or not isinstance(doc.get("epochs"), list):
        raise ExprcError(f"not a realign log (expected format {LOG_FORMAT})", where=str(path))
    return doc
