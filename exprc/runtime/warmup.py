"""`exprc.warmup(model, example_input)`: compile a patched model's kernels ahead of time.

Triton compiles a kernel the first time it runs with a new specialization (dtype, the alignment of sizes and
pointers, and the constexprs exprc derives from the shape: the element-wise tile, EVEN_M, the fused matmul's tile).
A forward of the patched model with the example input, and with its batch resized to each of `batch_sizes`, runs
every kernel of the model at every specialization those batches need, so that serving or a benchmark's first call
compiles nothing. Inference only (no autograd graph: the fused prologues run as they will).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
from torch import nn


def warmup(model: nn.Module, example_input: torch.Tensor, batch_sizes: Iterable[int] | None = None) -> float:
    """Run `model` once on `example_input` and once per batch size in `batch_sizes` (the example's first dimension
    resized by repeating it), in eval mode without gradients, then restore the mode; wait for the GPU. Returns
    the seconds it took (mostly compiling)."""
    sizes = list(dict.fromkeys([example_input.shape[0], *(batch_sizes or ())]))
    was_training = model.training
    start = time.perf_counter()
    model.eval()
    try:
        with torch.no_grad():
            for b in sizes:
                if b < 1:
                    raise ValueError(f"batch sizes must be positive, got {b}")
                reps = -(-b // example_input.shape[0])
                x = example_input.repeat(reps, *([1] * (example_input.dim() - 1)))[:b]
                model(x)
        if example_input.is_cuda:
            torch.cuda.synchronize(example_input.device)
    finally:
        model.train(was_training)
    return time.perf_counter() - start
