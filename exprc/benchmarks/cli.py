"""`exprc bench` (also `python -m bench`): arguments, and one run from them to a results file and plots."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ExprcError

CHOICES = ("all", "kernels", "epilogue", "vit", "train", "static", "report")
DEFAULT_RESULTS = "bench/results"
MODES_DEFAULT = "precise,fast,horner,auto"
EXIT_ROWS_FAILED = 1  # the run finished and wrote its results, but some rows raised (see the `error` rows)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", default="all", choices=CHOICES,
                   help="which bench to run (default all), or 'report' to regenerate the README table")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny shapes, a couple of implementations per bench (< 1 minute on a CPU)")
    p.add_argument("--device", choices=("cuda", "cpu"),
                   help="default: cuda when available; a CPU run always uses the tiny shapes")
    p.add_argument("--out", metavar="FILE", help="results JSON (default: RESULTS_DIR/<date>_<device>.json)")
    p.add_argument("--results-dir", metavar="DIR",
                   help=f"where results go and where 'report' reads them (default {DEFAULT_RESULTS}; for a --quick "
                        "or CPU run, a new temporary directory, printed, so that a smoke run leaves the "
                        "repository's results alone)")
    p.add_argument("--report", action="store_true", help="same as the 'report' bench: update the README table")
    p.add_argument("--readme", default="README.md", metavar="FILE",
                   help="the file whose '<!-- bench:begin -->' ... '<!-- bench:end -->' block 'report' rewrites")
    p.add_argument("--layers", metavar="FILE", help="layer file to benchmark (default: the paper's 25 layers)")
    p.add_argument("--modes", default=MODES_DEFAULT, help="exprc precision modes, comma-separated (static: "
                                                          "default all)")
    p.add_argument("--dtypes", help="storage dtypes, comma-separated (default per bench: kernels float32,bfloat16; "
                                    "epilogue and vit bfloat16)")
    p.add_argument("--batches", help="ViT batch sizes, comma-separated (default 1,32,256)")
    p.add_argument("--only", metavar="REGEX", help="run only cases whose bench/impl/layer/shape/dtype matches")
    p.add_argument("--exclude", metavar="REGEX", help="leave out cases whose bench/impl/layer/shape/dtype matches")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="stop starting new cases after this long (they are recorded as not run); the results file "
                        "is also written after each bench, so an interrupted run keeps what it measured")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    static = p.add_argument_group("static (compiled for a GPU architecture, no GPU needed)")
    static.add_argument("--arch", default="90,80", help="compute capabilities, comma-separated (default 90,80)")
    static.add_argument("--subset", action="store_true", help="only the fixed representative subset CI compiles")
    static.add_argument("--jobs", type=int, help="compiler processes (default: the CPUs)")
    static.add_argument("--kinds", help="only these kinds of kernel, comma-separated (e.g. epilogue-tma)")
    static.add_argument("--python", metavar="PY", help="run the static sweep under this Python (another Triton's "
                                                      "environment; it needs Triton only)")


def static_argv(args: argparse.Namespace) -> list[str]:
    """The arguments of `python -m exprc.benchmarks.static` for `exprc bench static ...`."""
    argv = ["--arch", args.arch, "--readme", args.readme]
    for flag, value in (("--layers", args.layers), ("--dtypes", args.dtypes), ("--jobs", args.jobs),
                        ("--results-dir", args.results_dir), ("--kinds", args.kinds)):
        if value is not None:
            argv += [flag, str(value)]
    if args.modes != MODES_DEFAULT:
        argv += ["--modes", args.modes]
    return argv + (["--subset"] if args.subset else [])


def run_static(args: argparse.Namespace) -> int:
    from . import static

    argv = static_argv(args)
    if args.python:
        return static.run_under(args.python, argv)
    return static.main(argv)


def _config(args: argparse.Namespace):
    import torch

    from .config import ALL_MODES, BenchConfig

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ExprcError("--device cuda: no CUDA device is available")
    modes = _csv(args.modes)
    bad = [m for m in modes if m not in ALL_MODES]
    if bad or not modes:
        raise ExprcError(f"--modes: unknown mode {bad[0] if bad else '(none)'!r}; choose from {', '.join(ALL_MODES)}")
    dtypes = _csv(args.dtypes) if args.dtypes else None
    for d in dtypes or ():
        if d not in ("float32", "bfloat16", "float16"):
            raise ExprcError(f"--dtypes: unknown dtype {d!r}; choose from float32, bfloat16, float16")
    try:
        batches = tuple(int(b) for b in _csv(args.batches)) if args.batches else None
    except ValueError:
        raise ExprcError(f"--batches: expected integers, found {args.batches!r}") from None
    for flag, pattern in (("--only", args.only), ("--exclude", args.exclude)):
        try:
            re.compile(pattern or "")
        except re.error as e:
            raise ExprcError(f"{flag}: bad regular expression: {e}") from None
    if args.budget is not None and args.budget <= 0:
        raise ExprcError(f"--budget: expected a positive number of seconds, found {args.budget}")
    return BenchConfig(device, args.quick, modes, dtypes, batches, args.only, args.exclude, args.layers, args.budget)


def run_report(args: argparse.Namespace) -> int:
    from .report import update_readme

    from . import static_report

    changed = update_readme(args.readme, args.results_dir or DEFAULT_RESULTS)
    print(f"{args.readme}: benchmark table {'updated' if changed else 'already up to date'}")
    if static_report.BEGIN in Path(args.readme).read_text():
        changed = static_report.update_readme(args.readme, args.results_dir or DEFAULT_RESULTS)
        print(f"{args.readme}: static table {'updated' if changed else 'already up to date'}")
    return 0


def results_dir(args: argparse.Namespace, cfg) -> str:
    """--results-dir; by default bench/results for a full GPU run, a fresh temporary directory for a smoke run."""
    if args.results_dir:
        return args.results_dir
    if cfg.quick or cfg.device != "cuda":
        tmp = tempfile.mkdtemp(prefix="exprc-bench-results-")
        print(f"results go to {tmp} (a smoke run's temporary directory; --results-dir DIR to choose)", flush=True)
        return tmp
    return DEFAULT_RESULTS


def report_failures(rows) -> None:
    """Each failed row on stderr (per-layer means of failed layers included), then the traceback of the first."""
    failed = [r for r in rows if r.error]
    print(f"exprc bench: error: {len(failed)} row(s) failed:", file=sys.stderr)
    for r in failed:
        name = r.impl + (f"[{r.layer}]" if r.layer else "")
        print(f"  {r.bench} {name} {r.shape} {r.dtype}: {r.error}", file=sys.stderr)
    first = next((r.traceback for r in failed if r.traceback), None)
    if first:
        print(f"first failure:\n{first.rstrip()}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.report or args.what == "report":
        return run_report(args)
    if args.what == "static":
        return run_static(args)
    cfg = _config(args)
    from .config import BENCHES
    from .harness import run_benches
    from .plots import plot_document
    from .results import CPU_NOTE, default_path, environment, make_document, write_document

    benches = BENCHES if args.what == "all" else (args.what,)
    env = environment(cfg.device)
    print(f"exprc bench {' '.join(benches)} on {env['device']}{' (--quick)' if cfg.quick else ''}", flush=True)
    if cfg.device != "cuda":
        print(f"NOTE: {CPU_NOTE}", flush=True)
    extra = {"modes": list(cfg.run_modes), "layers": cfg.layers_path or "paper Table 4"}
    started = datetime.now(timezone.utc)
    path = Path(args.out) if args.out else None
    out_dir = None if args.out else results_dir(args, cfg)

    def save(rows, complete: bool = False) -> dict:
        nonlocal path
        doc = make_document(env, cfg.quick, benches, rows, {**extra, "complete": complete}, when=started)
        path = path or default_path(out_dir, doc)
        write_document(doc, path)
        return doc

    rows = run_benches(cfg, benches, checkpoint=save)
    doc = save(rows, complete=True)
    measured = sum(1 for r in rows if r.ms is not None)
    failed = sum(1 for r in rows if r.error)
    print(f"results: {path} ({measured} rows measured, {len(rows) - measured - failed} skipped, {failed} failed)")
    if not args.no_plots:
        for message in plot_document(doc, path):
            print(message)
    if cfg.device != "cuda":
        print(f"NOTE: {CPU_NOTE}")
    if failed:
        report_failures(rows)
        return EXIT_ROWS_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bench ...`: the same as `exprc bench ...`."""
    from ..cli import main as exprc_main

    return exprc_main(["bench", *(sys.argv[1:] if argv is None else argv)])
