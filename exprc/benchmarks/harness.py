"""Runs benches: sets up each case, checks its output, times it, and records rows into one results document.

A case that cannot run here (an optional dependency missing, no CUDA, left out by the options) becomes a row with
`skipped` set to the reason. Any other exception is a failure: its row gets `error` (type, message, place) and a
traceback, the line printed for it says ERROR, and the run goes on with the other rows; the command reports the
failures and exits non-zero at the end. Everything of one bench runs in this one process, side by side, so its
ratios compare like with like.
"""

from __future__ import annotations

import gc
import importlib
import time
import traceback
from collections.abc import Callable

import torch

from .cases import Case, Row, add_layer_means, add_ratios, skip_reason
from .config import BenchConfig, BenchContext
from .paper_layers import load_layer_set
from .timing import measure_ms

BENCH_MODULES = {
    "kernels": "exprc.benchmarks.elementwise",
    "epilogue": "exprc.benchmarks.epilogue",
    "vit": "exprc.benchmarks.vit",
    "train": "exprc.benchmarks.train",
}

Log = Callable[[str], None]


def case_key(case: Case) -> str:
    """What --only / --exclude match against."""
    return f"{case.bench}/{case.impl}/{case.layer or ''}/{case.shape}/{case.dtype}"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _error_text(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    at = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
    return f"{type(e).__name__}: {e}"[:400] + at


def failed_row(case: Case | None, e: Exception, bench: str = "*") -> Row:
    """The row of a case (or of a whole bench when `case` is None) that raised `e`: skipped or failed."""
    reason = skip_reason(e)
    if reason is not None:
        kw = {"skipped": reason}
    else:
        kw = {"error": _error_text(e), "traceback": "".join(traceback.format_exception(e))}
    return Row.from_case(case, **kw) if case else Row(bench, "*", "*", "*", **kw)


def run_case(case: Case, cfg: BenchConfig) -> Row:
    t0 = time.perf_counter()
    fn = out = None
    try:
        with torch.enable_grad() if case.grad else torch.no_grad():
            fn = case.setup()
            out = fn()  # first call: compiles, autotunes, warms caches
            _sync(cfg.device)
            setup_s = time.perf_counter() - t0
            err = case.check(out) if case.check else None
            out = None
            ms, timer = measure_ms(fn, cfg.device, cfg.timer, case.graph)
    except Exception as e:  # noqa: BLE001 - one failing row never stops the run; it is reported at the end
        return failed_row(case, e)
    finally:
        del fn, out
        _free(cfg.device)
    row = Row.from_case(case, ms=ms, timer=timer, max_err=err, setup_s=round(setup_s, 3))
    seconds = ms * 1e-3
    if case.bytes is not None:
        row.gbps = case.bytes / seconds / 1e9
    if case.flops is not None:
        row.tflops = case.flops / seconds / 1e12
    if case.images is not None:
        row.images_per_s = case.images / seconds
    return row


def format_row(row: Row) -> str:
    name = row.impl + (f"[{row.layer}]" if row.layer else "")
    head = f"{row.bench:9} {name:44} {row.shape:22} {row.dtype:9}"
    if row.error:
        return f"{head} ERROR {row.error}"
    if row.skipped:
        return f"{head} SKIP  {row.skipped}"
    rate = (f"{row.gbps:8.1f} GB/s" if row.gbps is not None else f"{row.tflops:8.2f} TFLOP/s"
            if row.tflops is not None else f"{row.images_per_s:8.1f} img/s" if row.images_per_s is not None else "")
    err = f"  err {row.max_err:.1e}" if row.max_err is not None else ""
    return f"{head} {row.ms:10.4f} ms {rate}{err}"


CHECKPOINT_SECONDS = 30.0
Checkpoint = Callable[[list[Row]], None]


def run_bench(name: str, ctx: BenchContext, log: Log, deadline: float | None = None,
              checkpoint: Checkpoint | None = None) -> list[Row]:
    """The rows of one bench, with per-layer means and ratios; `checkpoint(rows so far)` every 30 s meanwhile."""
    mod = importlib.import_module(BENCH_MODULES[name])
    rows: list[Row] = []
    cases = mod.cases(ctx)
    saved = time.monotonic()
    while True:
        try:
            case = next(cases)
        except StopIteration:
            break
        except Exception as e:  # noqa: BLE001 - e.g. out of memory building one shape's inputs
            row = failed_row(None, e, name)
            if row.skipped:
                row.skipped = f"bench stopped: {row.skipped}"
            else:
                row.error = f"bench stopped: {row.error}"
            log(format_row(row))
            rows.append(row)
            break
        if not ctx.cfg.selects(case_key(case)):
            continue
        if deadline is not None and time.monotonic() > deadline:
            row = Row.from_case(case, skipped=f"not run: the --budget of {ctx.cfg.budget_s:.0f} s was used up")
        else:
            row = run_case(case, ctx.cfg)
        log(format_row(row))
        rows.append(row)
        if checkpoint and time.monotonic() - saved > CHECKPOINT_SECONDS:
            checkpoint(rows)
            saved = time.monotonic()
    _free(ctx.cfg.device)
    for row in add_layer_means(rows):
        log(format_row(row))
    add_ratios(rows, mod.BASELINES, mod.PER_LAYER_BASELINES)
    return rows


def _print(line: str) -> None:
    print(line, flush=True)


def run_benches(cfg: BenchConfig, benches: tuple[str, ...], log: Log = _print,
                checkpoint: Checkpoint | None = None) -> list[Row]:
    """Run `benches` in order. `checkpoint(rows so far)` is called after each bench and every 30 s, so that a
    killed run keeps what it measured."""
    ctx = BenchContext(cfg, load_layer_set(cfg.layers_path))
    start = time.monotonic()
    deadline = start + cfg.budget_s if cfg.budget_s else None
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    if cfg.device == "cpu":
        torch.set_num_threads(1)  # one thread: steadier times on a shared (CI) machine
    try:
        rows: list[Row] = []
        for name in benches:
            log(f"== {name} ==")
            partial = (lambda more, done=list(rows): checkpoint(done + more)) if checkpoint else None
            rows.extend(run_bench(name, ctx, log, deadline, partial))
            log(f"== {name}: done at {time.monotonic() - start:.0f} s ==")
            if checkpoint:
                checkpoint(rows)
        return rows
    finally:
        torch.set_num_threads(threads)
        ctx.close()
