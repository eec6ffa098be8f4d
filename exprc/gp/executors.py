"""How the (layer, seed) searches of a plan are run: in this process, in worker processes, or batched.

- `--jobs 1` (CPU): one search after another in this process, each spread over the host devices that
  jax_setup.py asked XLA for (both cores of a 2-core machine); the compiled engine is reused across searches.
- `--jobs N`: N worker processes (spawned: JAX must not be forked), one search each at a time, one host device
  each, XLA's Eigen thread pool off. Ctrl-C or a failing search terminates the other workers at once (a
  `ProcessPoolExecutor` would wait for their searches to end).
- `--batch N` (`--device gpu`): N searches with the same number of points vmapped together in this process
  (search_loop.py); results are reported when the batch ends.
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import Callable

from .jax_setup import enable_compilation_cache, local_cpu_devices, prepare
from .search import SearchConfig, SeedResult, run_search, run_searches


def execute(tasks: list[tuple[str, int]], plan, tick: Callable[[int], None],
            on_result: Callable[[str, SeedResult], None], task: Callable | None = None) -> None:
    """Run `tasks` of `plan` (runner.EvolvePlan); `task(x, y, config, seed, ticks)` runs one in a worker (a
    module-level function; tests pass a stand-in)."""
    if not tasks:
        return
    if plan.batch > 1:
        _run_batched(tasks, plan, tick, on_result)
        return
    jobs = max(1, min(plan.jobs, len(tasks)))
    if jobs == 1:
        enable_compilation_cache()
        devices = local_cpu_devices() if plan.device == "cpu" else 1
        for layer, seed in tasks:
            m = plan.mappings.layers[layer]
            on_result(layer, run_search(m.x, m.y, plan.config, seed, progress=tick, devices=devices))
        return
    _run_in_workers(tasks, plan, jobs, tick, on_result, task or _search_task)


def _run_batched(tasks, plan, tick, on_result) -> None:
    enable_compilation_cache()
    groups: dict[int, list[tuple[str, int]]] = {}  # a batch holds searches of one number of points
    for layer, seed in tasks:
        groups.setdefault(len(plan.mappings.layers[layer].x), []).append((layer, seed))
    for group in groups.values():
        for i in range(0, len(group), plan.batch):
            batch = group[i:i + plan.batch]
            mappings = [(plan.mappings.layers[layer].x, plan.mappings.layers[layer].y) for layer, _ in batch]
            results = run_searches(mappings, plan.config, [seed for _, seed in batch], progress=tick, batched=True)
            for (layer, _), result in zip(batch, results, strict=True):
                on_result(layer, result)


def _run_in_workers(tasks, plan, jobs: int, tick, on_result, task: Callable) -> None:
    ctx = multiprocessing.get_context("spawn")  # JAX must not be forked
    with ctx.Manager() as manager:
        ticks = manager.Queue()
        pool = ctx.Pool(jobs, initializer=_init_worker)
        try:
            pending = []
            for layer, seed in tasks:
                m = plan.mappings.layers[layer]
                pending.append((layer, pool.apply_async(task, (m.x, m.y, plan.config, seed, ticks))))
            while pending:
                pending[0][1].wait(0.5)
                _drain(ticks, tick)
                done = [p for p in pending if p[1].ready()]  # once: a search ending meanwhile waits its turn
                pending = [p for p in pending if p not in done]
                for layer, result in done:
                    on_result(layer, result.get())  # a worker's exception is raised here
            pool.close()
        except BaseException:
            pool.terminate()  # Ctrl-C or a failure: stop the other searches now, not after their hour
            raise
        finally:
            pool.join()


def _init_worker() -> None:
    """Workers leave Ctrl-C to the parent (which terminates them); each gets one host device and no Eigen
    thread pool: there are already as many workers as cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare(host_devices=1, single_threaded=True)


def _drain(queue, tick: Callable[[int], None]) -> None:
    import queue as queue_module

    while True:
        try:
            tick(queue.get_nowait())
        except queue_module.Empty:
            return


def _search_task(x, y, config: SearchConfig, seed: int, ticks) -> SeedResult:
    """One search in a worker process; reports each finished generation on `ticks`."""
    enable_compilation_cache()
    return run_search(x, y, config, seed, progress=ticks.put)
