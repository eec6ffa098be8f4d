"""How one measurement is taken: Triton's `do_bench` on CUDA, a `time.perf_counter` median loop on a CPU.

Every timer returns the median in milliseconds and the name of the method, which goes into the result row.
On CUDA, `do_bench` flushes the L2 cache before each call and times it with CUDA events; `do_bench_cudagraph`
replays the calls from a CUDA graph (no launch overhead) and is used where a bench asks for it, falling back to
`do_bench` when the function cannot be captured.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TimerSettings:
    warmup_ms: int  # do_bench warm-up
    rep_ms: int  # do_bench / do_bench_cudagraph measuring time
    cpu_seconds: float  # CPU loop: time budget per measurement
    cpu_min_reps: int
    cpu_max_reps: int


FULL = TimerSettings(warmup_ms=10, rep_ms=50, cpu_seconds=0.5, cpu_min_reps=5, cpu_max_reps=1000)
QUICK = TimerSettings(warmup_ms=5, rep_ms=25, cpu_seconds=0.05, cpu_min_reps=3, cpu_max_reps=200)


def cpu_median_ms(fn: Callable[[], object], s: TimerSettings) -> float:
    fn()  # warm-up (the caller has already run it once)
    times: list[float] = []
    deadline = time.perf_counter() + s.cpu_seconds
    while len(times) < s.cpu_max_reps and (len(times) < s.cpu_min_reps or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def measure_ms(fn: Callable[[], object], device: str, s: TimerSettings, graph: bool = False) -> tuple[float, str]:
    """(median ms, timer name) of `fn()` on `device`."""
    if device != "cuda":
        return cpu_median_ms(fn, s), "perf_counter"
    import torch
    import triton.testing

    if graph:
        try:
            ms = triton.testing.do_bench_cudagraph(fn, rep=s.rep_ms, return_mode="median")
            return float(ms), "do_bench_cudagraph"
        except Exception:  # noqa: BLE001 - not capturable (host syncs, ...): time it launch by launch
            torch.cuda.synchronize()
    ms = triton.testing.do_bench(fn, warmup=s.warmup_ms, rep=s.rep_ms, return_mode="median")
    return float(ms), "do_bench"
