"""One epoch of re-alignment: micro-batches accumulated to the global batch, AMP, DistributedDataParallel.

An optimizer step takes `accum` micro-batches on every process (gradients synchronized only on the last, through
`no_sync`), each loss divided by `accum`, so that DDP's average over processes makes it the mean over the global
batch. fp16 runs through a GradScaler; bf16 needs none. The teacher of -D runs under no_grad in the same autocast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from .checkpoint import Position
from .distributed import World, sum_across
from .loss import Loss


@dataclass(frozen=True)
class StepInfo:
    """What `on_step` hears after each optimizer step (and its checkpoint, if one was due)."""

    epoch: int  # 0-based index of the epoch being trained
    step: int  # optimizer steps done in this epoch
    global_step: int
    loss: float  # this process's loss of the step (mean over its micro-batches)


@dataclass
class Trainer:
    model: nn.Module  # the DDP-wrapped student under torchrun
    teacher: nn.Module | None
    loss: Loss
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: Callable
    world: World
    accum: int
    steps_per_epoch: int
    images_per_step: int  # global batch

    def step(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """One optimizer step over `accum` micro-batches; this process's mean loss (a detached tensor)."""
        total = torch.zeros((), device=self.world.device)
        for i, (images, labels) in enumerate(batches):
            images = images.to(self.world.device, non_blocking=True)
            labels = labels.to(self.world.device, non_blocking=True)
            last = i == len(batches) - 1
            sync = nullcontext() if last or not hasattr(self.model, "no_sync") else self.model.no_sync()
            with sync:
                with self.autocast():
                    logits = self.model(images)
                    teacher_logits = None
                    if self.loss.distills:
                        with torch.no_grad():
                            teacher_logits = self.teacher(images)
                loss = self.loss(logits, labels, teacher_logits) / len(batches)
                self.scaler.scale(loss).backward()
            total += loss.detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def epoch(self, loader, epoch: int, position: Position, *, max_steps: int | None, checkpoint_every: int,
              save: Callable[[Position], None], on_step: Callable[[StepInfo], None] | None,
              bar) -> dict | None:
        """Train epoch `epoch` from `position.step` on (advancing `position`); checkpoint every `checkpoint_every`
        steps. Returns the epoch's statistics, or None when `max_steps` stopped it part-way."""
        self.model.train()
        batches = iter(loader)
        loss_sum, steps, start = torch.zeros((), device=self.world.device), 0, time.perf_counter()
        while position.step < self.steps_per_epoch:
            if max_steps is not None and position.global_step >= max_steps:
                return None
            loss = self.step([next(batches) for _ in range(self.accum)])
            loss_sum += loss
            steps += 1
            position.step += 1
            position.global_step += 1
            due = checkpoint_every and position.global_step % checkpoint_every == 0
            if due and position.step < self.steps_per_epoch:  # the epoch's end is saved after its evaluation
                save(position)
            if bar is not None:
                rate = steps * self.images_per_step / max(time.perf_counter() - start, 1e-9)
                if steps % 10 == 1 or position.step == self.steps_per_epoch:
                    bar.set_postfix(loss=f"{float(loss):.4f}", img_s=f"{rate:.0f}", refresh=False)
                bar.update(1)
            if on_step is not None:
                on_step(StepInfo(epoch, position.step, position.global_step, float(loss)))
        seconds = time.perf_counter() - start
        total, count = sum_across(self.world, [float(loss_sum), float(steps)])
        return {"train_loss": total / max(count, 1), "steps": steps, "seconds": seconds,
                "images_per_s": steps * self.images_per_step / max(seconds, 1e-9)}
