"""`exprc bench`: exprc's kernels against LayerNorm and DyT, kernel, epilogue and model level."""

from __future__ import annotations

import argparse

HELP = "benchmark exprc's kernels against LayerNorm and DyT (GPU; --quick smoke run on a CPU)"
DESCRIPTION = """\
Measure, side by side in one process, exprc's compiled norms against LayerNorm and DyT:

  kernels   element-wise y = f(x)*w + b: exprc (per layer and mode) vs F.layer_norm, Liger, torch.compile,
            DyT (eager, Liger, compiled), the paper's runtime (one eager op per node) and a device copy
  epilogue  fc2/proj + bias + residual + norm fused into the matmul vs cuBLAS + separate kernels
  vit       ViT-B/16 bf16 inference, images/s, batch 1/32/256
  train     forward + backward: each norm (exprc's backward kernel vs LayerNorm, DyT, the paper's runtime and
            the eager-autograd path), the fused fc2 block, and a ViT training step (AMP bf16), images/s
  static    no GPU needed: compile every kernel for sm_90/sm_80 and count registers, spills, SASS instructions
            and MUFU per element beside a copy, Liger's LayerNorm/DyT and Triton's tutorial matmul
            (bench/results/static-sm<arch>.json, one section per Triton version; --python for another Triton)
  report    rewrite the README's tables from the newest GPU results in --results-dir

Writes one JSON per run (plus a PNG per bench) under bench/results/; a --quick or CPU run writes them to a new
temporary directory instead (printed), unless given --results-dir or --out. On CUDA, times are medians of
triton.testing.do_bench; on a CPU, of a perf_counter loop, on tiny shapes: NOT GPU numbers.
A full run takes several minutes; run the benches one at a time, or narrow with --only/--exclude/--dtypes.

A row is skipped (with its reason) only when an optional package (liger-kernel, timm, matplotlib) or CUDA is
missing, or the options leave it out. Any other exception is an error: the row records it, the run goes on,
writes its results, lists the failures on stderr and exits with status 1.

examples:
  exprc bench --quick                         # CPU smoke run (< 1 minute)
  exprc bench kernels --dtypes bfloat16       # on a GPU
  exprc bench epilogue --exclude max-autotune # skip the slow torch.compile(max-autotune) rows
  exprc bench static                          # no GPU: the static sweep on this Triton (~1 hour on 2 cores)
  exprc bench static --python /work/tri36/bin/python   # the same under another Triton's environment
  exprc bench report                          # README table from bench/results/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..benchmarks.cli import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    from ..benchmarks.cli import run as run_bench

    return run_bench(args)
