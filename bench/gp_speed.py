"""Wall time of `exprc evolve`, old code against new, at the paper's settings (a manual benchmark, not a test).

    python bench/gp_speed.py [--points 50000] [--layer blocks.3.norm2] [--old-commit db1f35c] [--study-seeds 14]

1. One search (--jobs 1, one layer, one seed; population 500, 50 generations, 10 constant steps, 45,000
   training points of the tiny digits model): the old code, checked out from git into a temporary directory
   (`git archive`, run with this virtualenv), against the new engine. Each is timed as a whole process (start-up,
   compilation and the search). The old code had no compilation cache; the new one's first process fills its
   cache (cold) and later processes read it (warm): both are reported.
2. Throughput: the same few searches with --jobs 1 (one search at a time over both cores) and --jobs N (one a
   core), then the paper's study size (--study-seeds seeds of every layer: 9 x 14 = 126 searches) with the
   better setting.

The load average is recorded before and after each run: the figures mean something only on an otherwise idle
machine. Results: bench/results/gp-speed.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gp_common import ROOT, load, machine, tiny_digits_mappings, write_result  # noqa: E402

OLD_COMMIT = "db1f35c"  # the last commit before engine `exprc` (the GP stage as issue 12 found it)


def exprc_package(env: dict, cwd: Path) -> Path:
    """The exprc package a `python -m exprc` started with `env` in `cwd` imports."""
    out = subprocess.run([sys.executable, "-c", "import exprc; print(exprc.__file__)"], env=env, cwd=cwd,
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()).resolve().parent


def timed(cmd: list[str], env: dict, label: str, doc: dict | None = None, output: str | None = None,
          code: Path | None = None) -> dict:
    """Run `cmd` as a whole process and time it. It runs in an empty directory: `python -m` puts its working
    directory first on sys.path, and in the repository that would import this tree's exprc whatever PYTHONPATH
    says (the old code's runs measured the new code until this was noticed). `code`: the exprc package the run
    must import, checked before it starts."""
    with tempfile.TemporaryDirectory(prefix="gp-run-") as cwd:
        found = exprc_package(env, Path(cwd))
        if code is not None and found != code.resolve():
            raise SystemExit(f"{label}: would import {found}, not {code}")
        before = load()
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {' '.join(cmd)} (exprc from {found})", file=sys.stderr,
              flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"    {seconds:.1f} s", file=sys.stderr, flush=True)
    run = {"label": label, "command": " ".join(cmd), "exprc": str(found), "seconds": round(seconds, 2),
           "load_before": before, "load_after": load()}
    if doc is not None:  # written after every run: a long benchmark cut short keeps what it measured
        doc["runs"].append(run)
        write_result(output, doc)
    return run


def old_checkout(commit: str, into: Path) -> Path:
    """The tree of `commit` (its exprc package) unpacked into `into`, without touching the work tree."""
    archive = into / "old.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), commit, "exprc"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "old", filter="data")
    return into / "old"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=50_000, help="points per layer (90%% train; default 50,000)")
    ap.add_argument("--layer", default="blocks.3.norm2", help="the layer of the single-search comparison")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--old-commit", default=OLD_COMMIT, help="git revision of the old code (default %(default)s)")
    ap.add_argument("--skip-old", action="store_true", help="do not run the old code (it takes ~15 minutes)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="workers for the throughput runs")
    ap.add_argument("--compare-searches", type=int, default=6,
                    help="searches in the --jobs comparison (0: skip it and the study run)")
    ap.add_argument("--study-seeds", type=int, default=14, help="seeds per layer in the study run (0: skip)")
    ap.add_argument("-o", "--output", default="gp-speed.json", help="file name under bench/results/")
    args = ap.parse_args()

    mappings = tiny_digits_mappings(args.points)
    doc = {"benchmark": "exprc evolve wall time, old vs new", "machine": machine(), "mappings": str(mappings),
           "points_per_layer": args.points, "settings": "population 500, 50 generations, 10 constant steps",
           "runs": []}
    base = os.environ.copy()
    with tempfile.TemporaryDirectory(prefix="gp-speed-") as tmp:
        tmp = Path(tmp)
        one = ["evolve", str(mappings), "--layers", args.layer, "--seeds", "1", "--first-seed", str(args.seed),
               "--jobs", "1", "--quiet"]
        if not args.skip_old:
            old = old_checkout(args.old_commit, tmp)
            env = {**base, "PYTHONPATH": str(old), "EXPRC_CACHE_DIR": str(tmp / "old-cache")}
            timed([sys.executable, "-m", "exprc", *one, "-o", str(tmp / "old.json")], env,
                  f"one search, old code ({args.old_commit})", doc, args.output, code=old / "exprc")
        env = {**base, "EXPRC_CACHE_DIR": str(tmp / "new-cache")}
        for label in ("one search, new engine, cold compilation cache", "one search, new engine, warm cache"):
            out = tmp / f"new-{len(doc['runs'])}.json"
            timed([sys.executable, "-m", "exprc", *one, "-o", str(out)], env, label, doc, args.output,
                  code=ROOT / "exprc")
        times = {r["label"]: r["seconds"] for r in doc["runs"]}
        if not args.skip_old:  # the old code had no compilation cache: it compiles in every process
            old_s = times[f"one search, old code ({args.old_commit})"]
            doc["speedup_warm"] = round(old_s / times["one search, new engine, warm cache"], 1)
            doc["speedup_cold"] = round(old_s / times["one search, new engine, cold compilation cache"], 1)

        from exprc.gp.mappings import load_mappings

        layers = load_mappings(mappings).names()
        per = {}
        for jobs in (1, args.jobs) if args.compare_searches else ():
            n = args.compare_searches
            cmd = [sys.executable, "-m", "exprc", "evolve", str(mappings), "--layers", *layers[:n], "--seeds", "1",
                   "--jobs", str(jobs), "--quiet", "-o", str(tmp / f"jobs{jobs}.json")]
            run = timed(cmd, env, f"{n} searches, --jobs {jobs}", doc, args.output)
            run["searches_per_hour"] = round(n * 3600 / run["seconds"], 1)
            per[jobs] = run["searches_per_hour"]
        best = max(per, key=per.get) if per else None
        doc["best_jobs"] = best
        if args.study_seeds and best is not None:
            n = len(layers) * args.study_seeds
            cmd = [sys.executable, "-m", "exprc", "evolve", str(mappings), "--seeds", str(args.study_seeds),
                   "--jobs", str(best), "--quiet", "-o", str(tmp / "study.json")]
            run = timed(cmd, env, f"study: {len(layers)} layers x {args.study_seeds} seeds = {n} searches", doc,
                        args.output)
            run["searches"] = n
            run["searches_per_hour"] = round(n * 3600 / run["seconds"], 1)
            run["hours_for_125"] = round(125 / run["searches_per_hour"], 2)
    path = write_result(args.output, doc)
    for r in doc["runs"]:
        print(f"{r['seconds']:9.1f} s  {r['label']}  (load {r['load_before']['loadavg'][0]} -> "
              f"{r['load_after']['loadavg'][0]})")
    for key in ("speedup_warm", "speedup_cold"):
        if key in doc:
            print(f"{key}: {doc[key]}x")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
