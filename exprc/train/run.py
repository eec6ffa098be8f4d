"""`realign(config)`: a whole re-alignment run, from the loaded model to the last epoch's log and checkpoint.

Epoch 0 evaluates the student right after the replacement (and the original LayerNorm model beside it); epochs
1..E train and evaluate. Rank 0 prints, writes the log and the checkpoints; every process trains its share.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..atomic_write import atomic_write
from ..errors import ExprcError
from . import checkpoint as ckpt
from . import distributed
from .config import RealignConfig, identity, resolve
from .data import build_data
from .loop import StepInfo, Trainer
from .loss import Loss
from .metrics import evaluate, log_document, write_log
from .models import build_models, parameter_groups


@dataclass
class RealignResult:
    output: Path
    label: str
    original: dict | None  # the LayerNorm model's accuracy before any change
    epochs: list[dict]  # epoch 0 (after the replacement) .. the last one evaluated
    position: ckpt.Position
    model: torch.nn.Module  # the student (unwrapped)


def batch_plan(config: RealignConfig, world_size: int) -> tuple[int, int]:
    """(micro-batch per process, accumulation steps) making up the global batch."""
    if config.batch_size % world_size:
        raise ExprcError(f"--batch-size {config.batch_size} is not divisible by the {world_size} processes")
    per = config.batch_size // world_size
    micro = config.micro_batch or per
    if per % micro:
        raise ExprcError(f"--batch-size {config.batch_size} over {world_size} process(es) is {per} images each, "
                         f"not a multiple of --micro-batch {micro}")
    return micro, per // micro


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[amp]


def _deterministic() -> None:
    from ..runtime.ops import autotune_requested

    if autotune_requested():
        raise ExprcError("--deterministic needs the fixed kernel tiles: unset EXPRC_AUTOTUNE")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def say(world: distributed.World, text: str) -> None:
    if world.main:
        print(text, flush=True)


def realign(config: RealignConfig, on_step: Callable[[StepInfo], None] | None = None) -> RealignResult:
    """Run (or with `config.resume`, continue) a re-alignment; under torchrun, this process's part of it."""
    config = resolve(config)
    world = distributed.init(config.device)
    try:
        return _run(config, world, on_step)
    finally:
        distributed.finish(world)


def _run(config: RealignConfig, world: distributed.World, on_step) -> RealignResult:
    from torch.nn.parallel import DistributedDataParallel

    if config.deterministic:
        _deterministic()
    out = Path(config.output)
    path = out / ckpt.CHECKPOINT
    distributed.agree(world, config.resume or not path.exists(),
                      f"{out} already holds a run ({ckpt.CHECKPOINT}): add --resume to continue it, or choose "
                      "another --output")
    micro, accum = batch_plan(config, world.size)
    _seed(config.seed)  # the same random weights (--random-init) on every process
    keep_teacher = config.variant == "D" or (config.eval_original and not config.resume)
    models = build_models(config, world.device, keep_teacher=keep_teacher)
    groups = parameter_groups(models.student, config)
    data = build_data(config, models.student, world, micro)
    steps_per_epoch = data.sampler.num_samples // (micro * accum)
    if steps_per_epoch == 0:
        raise ExprcError(f"{data.train_size} training images are too few for one batch of {config.batch_size}")
    optimizer = torch.optim.AdamW(groups, betas=config.betas)
    dtype = amp_dtype(config.amp, world.device)
    scaler = torch.amp.GradScaler(world.device.type, enabled=dtype == torch.float16)
    autocast = partial(torch.autocast, world.device.type, dtype=dtype) if dtype is not None else nullcontext
    ident = identity(config, layers=models.layers_digest, weights=models.weights_digest, train_images=data.train_size)
    log = {"original": None, "epochs": []}
    position = ckpt.Position()
    if config.resume:
        payload = ckpt.load(path)
        ckpt.check_identity(payload, ident, path)
        position, log, exact = ckpt.restore(payload, model=models.student, optimizer=optimizer, scaler=scaler,
                                            rank=world.rank, world_size=world.size, device=world.device, path=path)
        del payload
        if not exact:
            _seed(config.seed * 1000 + world.rank + position.global_step)
            say(world, "note: the number of processes changed; the run continues, not bit-for-bit")
    else:
        _seed(config.seed + world.rank)  # dropout and drop-path differ between processes
    _describe(config, world, models, groups, data, micro, accum, steps_per_epoch, dtype)
    if not config.resume:
        if config.eval_original:
            log["original"] = evaluate(models.teacher, data.val, world, autocast)
            say(world, f"original LayerNorm model: top-1 {log['original']['top1']:.2f}%")
        first = {"epoch": 0, **evaluate(models.student, data.val, world, autocast)}
        log["epochs"].append(first)
        say(world, f"epoch 0 (after the replacement): top-1 {first['top1']:.2f}% top-5 {first['top5']:.2f}%")
        if world.main:
            write_log(out, log_document(config.to_dict(), config.label, log["original"], log["epochs"]))
    teacher = models.teacher if config.variant == "D" else None
    models.teacher = None
    model = models.student
    if world.distributed:
        model = DistributedDataParallel(model, device_ids=[world.device.index] if world.device.type == "cuda" else None)
    trainer = Trainer(model, teacher, Loss(config.distill_lambda, config.distill_tau) if teacher is not None
                      else Loss(), optimizer, scaler, autocast, world, accum, steps_per_epoch, config.batch_size)

    def save(pos: ckpt.Position) -> None:
        rng = distributed.gather_objects(world, ckpt.rng_state(world.device))
        if world.main:
            ckpt.save(path, model=models.student, optimizer=optimizer, scaler=scaler, position=pos, log=log,
                      config=config.to_dict(), identity=ident, rng=rng)
        distributed.barrier(world)

    while position.epoch < config.epochs:
        epoch = position.epoch
        data.sampler.set_position(epoch, position.step * micro * accum)
        bar = _bar(config, world, epoch, steps_per_epoch, position.step)
        try:
            stats = trainer.epoch(data.train, epoch, position, max_steps=config.max_steps,
                                  checkpoint_every=config.checkpoint_every, save=save, on_step=on_step, bar=bar)
        finally:
            if bar is not None:
                bar.close()
        if stats is None:  # --max-steps
            save(position)
            say(world, f"stopped after {position.global_step} steps (--max-steps); --resume continues")
            break
        record = {"epoch": epoch + 1, **evaluate(models.student, data.val, world, autocast), **stats}
        log["epochs"].append(record)
        position = ckpt.Position(epoch + 1, 0, position.global_step)
        if world.main:  # before the checkpoint: a run killed in between redoes this epoch, identically
            write_log(out, log_document(config.to_dict(), config.label, log["original"], log["epochs"]))
            if record["top1"] >= max(r["top1"] for r in log["epochs"][1:]):
                with atomic_write(out / "best.pt", binary=True) as f:
                    torch.save(models.student.state_dict(), f)
        save(position)
        say(world, f"epoch {epoch + 1}: top-1 {record['top1']:.2f}% top-5 {record['top5']:.2f}% "
                   f"loss {record['train_loss']:.4f} ({record['images_per_s']:.0f} images/s)")
    return RealignResult(out, config.label, log["original"], log["epochs"], position, models.student)


def _bar(config: RealignConfig, world: distributed.World, epoch: int, total: int, initial: int):
    if not (config.progress and world.main):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{config.epochs}", unit="step",
                file=sys.stderr, disable=None, leave=False)


def _describe(config, world, models, groups, data, micro, accum, steps_per_epoch, dtype) -> None:
    if not world.main:
        return
    sizes = ", ".join(f"{g['name']} {sum(p.numel() for p in g['params']):,} parameters at lr {g['lr']:g}"
                      for g in groups)
    source = f"{config.synthetic} random images" if config.synthetic else f"{data.train_size:,} images in {config.data}"
    weights = config.checkpoint or ("random init" if config.random_init else "timm weights")
    print(f"realign {config.label}: {config.model} ({weights}); {sizes}; weight decay {config.weight_decay:g}, "
          f"drop path {config.drop_path:g}", flush=True)
    print(f"  batch {config.batch_size} = {micro} x {accum} accumulation x {world.size} process(es) on {world.device}; "
          f"AMP {dtype or 'off'}; {steps_per_epoch} steps/epoch over {source}; {data.val_size:,} validation images",
          flush=True)
