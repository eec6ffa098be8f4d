"""`exprc realign --bench-out FILE`: how long a re-alignment epoch takes with exprc's norms, against the paper's.

The same training steps (model, variant, batch, AMP, data) timed three ways, one after the other in one process:
the student as configured (exprc's GP norms, fused, with their generated backward), the same expressions as the
paper's generated modules run them (one eager torch op per node, autograd through all of them:
`exprc.benchmarks.paper_runtime`), and the untouched LayerNorm model. Each times `--max-steps` optimizer steps
after a warm-up; the JSON holds images/s, the epoch time this gives for ImageNet-1K's 1,281,167 training images
at that rate, and the ratio of epoch times paper / exprc.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ..atomic_write import atomic_write
from ..errors import ExprcError
from . import distributed
from .config import RealignConfig, resolve
from .data import build_data
from .loop import Trainer
from .loss import Loss
from .models import build_models, load_original, parameter_groups
from .run import amp_dtype, batch_plan

IMAGENET_TRAIN = 1_281_167
FORMAT = "exprc.bench-realign/1"
AMP_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "off"}


def paper_student(config: RealignConfig, device: torch.device) -> nn.Module:
    """The original model with each LayerNorm replaced by the paper's eager module of its expression (unoptimized
    IR, one torch op per node), affine copied."""
    from ..benchmarks.paper_runtime import PaperRuntimeNorm
    from ..frontend.layer_files import read_layers

    if Path(config.layers).is_dir():
        raise ExprcError("--bench-out needs the layer file (layers.json or a Pareto CSV), not a kernels directory")
    layers = read_layers(config.layers, select=config.select, seed=config.layers_seed)
    model = load_original(config)
    for name, ln in [(n, m) for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)]:
        if name not in layers.layers:
            raise ExprcError(f"the layer file has no expression for {name}", where=config.layers)
        norm = PaperRuntimeNorm(layers.layers[name].ir, ln.normalized_shape[0])
        with torch.no_grad():
            norm.weight.copy_(ln.weight)
            norm.bias.copy_(ln.bias)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, norm)
    return model.to(device).train()


def _time(config: RealignConfig, world, student: nn.Module, teacher: nn.Module | None, data, micro: int,
          accum: int, steps: int, warmup: int) -> dict:
    from ..benchmarks.paper_runtime import PaperRuntimeNorm

    groups = parameter_groups(student, config, norms=(PaperRuntimeNorm,))
    dtype = amp_dtype(config.amp, world.device)
    autocast = partial(torch.autocast, world.device.type, dtype=dtype) if dtype is not None else nullcontext
    trainer = Trainer(student, teacher, Loss(config.distill_lambda, config.distill_tau) if teacher else Loss(),
                      torch.optim.AdamW(groups, betas=config.betas),
                      torch.amp.GradScaler(world.device.type, enabled=dtype == torch.float16), autocast, world,
                      accum, 0, config.batch_size)
    batches = _batches(data, world.device, accum)
    sync = torch.cuda.synchronize if world.device.type == "cuda" else (lambda: None)
    for i in range(warmup):
        trainer.step(batches[i % len(batches)])
    sync()
    start = time.perf_counter()
    for i in range(steps):
        trainer.step(batches[i % len(batches)])
    sync()
    seconds = time.perf_counter() - start
    rate = steps * config.batch_size / seconds
    return {"steps": steps, "seconds": seconds, "step_ms": 1000 * seconds / steps, "images_per_s": rate,
            "imagenet_epoch_hours": IMAGENET_TRAIN / rate / 3600}


def _batches(data, device: torch.device, accum: int, count: int = 4) -> list[list]:
    """`count` steps' worth of micro-batches from the loader, on `device`, cycled through by the timing (the
    steps are timed, not the loader)."""
    data.sampler.set_position(0, 0)
    it = iter(data.train)
    out = []
    for _ in range(count):
        step = []
        for _ in range(accum):
            try:
                images, labels = next(it)
            except StopIteration:
                it = iter(data.train)
                images, labels = next(it)
            step.append((images.to(device), labels.to(device)))
        out.append(step)
    return out


def bench_realign(config: RealignConfig, output: str) -> dict:
    """Time the three students and write the JSON to `output`; returns it."""
    from ..benchmarks.results import environment

    config = resolve(config)
    if config.norm != "gp":
        raise ExprcError("--bench-out compares exprc's GP norms with the paper's modules: give --norm gp --layers")
    world = distributed.init(config.device)
    if world.distributed:
        raise ExprcError("--bench-out times one process; run it without torchrun")
    steps = config.max_steps or 300
    warmup = max(3, min(20, steps // 5))
    micro, accum = batch_plan(config, 1)
    torch.manual_seed(config.seed)
    models = build_models(config, world.device, keep_teacher=config.variant == "D")
    data = build_data(config, models.student, world, micro)
    rows = {}
    builders = {
        "exprc": lambda: models.student,
        "paper-eager": lambda: paper_student(config, world.device),
        "layernorm": lambda: load_original(config).to(world.device).train(),
    }
    for name, build in builders.items():
        print(f"timing {name}: {warmup} warm-up + {steps} steps of {config.batch_size} images", flush=True)
        student = build()
        rows[name] = _time(config, world, student, models.teacher, data, micro, accum, steps, warmup)
        del student
        models.student = None
        if world.device.type == "cuda":
            torch.cuda.empty_cache()
    doc = {"format": FORMAT, **environment("cuda" if world.device.type == "cuda" else "cpu"),
           "model": config.model, "model_args": config.model_args, "variant": config.variant, "layers": config.layers,
           "batch_size": config.batch_size, "micro_batch": micro, "amp": AMP_NAMES[amp_dtype(config.amp, world.device)],
           "fuse": config.fuse, "data": config.data or f"synthetic {config.synthetic}", "rows": rows,
           "epoch_time_ratio_paper_over_exprc": rows["paper-eager"]["seconds"] / rows["exprc"]["seconds"],
           "epoch_time_ratio_exprc_over_layernorm": rows["exprc"]["seconds"] / rows["layernorm"]["seconds"]}
    if world.device.type != "cuda":
        doc["note"] = "CPU run: not the GPU measurement the issue asks for"
    with atomic_write(output) as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"exprc {rows['exprc']['images_per_s']:.1f} images/s, paper's eager modules "
          f"{rows['paper-eager']['images_per_s']:.1f}, LayerNorm {rows['layernorm']['images_per_s']:.1f}: "
          f"epoch time paper / exprc = {doc['epoch_time_ratio_paper_over_exprc']:.2f}; wrote {output}")
    return doc
