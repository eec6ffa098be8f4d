"""`exprc bench static`: compile every kernel of a layer file for sm_90 / sm_80 without a GPU and record what it
became (registers, spills, SASS instructions and MUFU operations per element), beside a plain copy, Liger's
LayerNorm and DyT and Triton's tutorial matmul; the CPU-side evidence of speed between GPU runs.

    exprc bench static                                   # the full sweep on this Triton, into bench/results/
    exprc bench static --python /work/tri36/bin/python   # the same under another Triton (needs no torch)
    python -m exprc.benchmarks.static --subset           # what CI compiles

Results: `static-sm<arch>.json` with one section per Triton version (a run replaces its own version's section
and keeps the others), then the README's static table (`static_report.py`). Per element means: for the
element-wise kernels, one thread's instructions / the elements it computes; for the backward kernel, the same
for its loop over rows; for the matmuls, the instructions after the K loop (the epilogue) per output element.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from .static_cases import ELEMENT_SIZE, Job, sweep

FORMAT = "exprc.static/1"
CONVERSIONS = ("F2I", "I2F", "FRND", "F2F")  # quarter-rate conversion instructions (not MUFU, but a narrow pipe too)
DEFAULT_LAYERS = Path(__file__).resolve().parents[2] / "examples" / "vit_b16_paper.json"
DEFINITIONS = {
    "instructions": "SASS instructions of one thread on the kernel's main path (NOPs and called slow paths left "
                    "out; both sides of a branch counted)",
    "per_element": "instructions and MUFU per element: element-wise kernels over a program's elements, the "
                   "backward kernel over one iteration of its row loop, matmuls the epilogue (after the K loop; "
                   "epilogue-tma: after the K loop inside its tile loop) over the output tile",
    "loop": "[before, in, after] the K loop (matmuls) or row loop (backward), instructions of one thread; "
            "epilogue-tma: [set-up and the tile loop's head, the K loop, the tile loop after the K loop]",
    "spills": "bytes of stack per thread (cuobjdump STACK): > 0 means register spills",
    "ctas_per_sm": "programs resident per SM at once, from registers, threads and shared memory (bytes, 'shared')",
    "conversions": "F2I, I2F, FRND and F2F instructions on the main path (16 a clock per SM, like MUFU)",
}


def _torch_stub() -> None:
    """Generated modules import torch for their eager functions, which compiling never calls: under a Triton-only
    environment an empty module stands in (after exprc is imported, so exprc does not take it for torch)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.modules.setdefault("torch", types.ModuleType("torch"))


def _compile(job: Job, liger_ops: str | None):
    from ..codegen import compile_check as cc
    from . import static_baselines as sb

    if job.kind in ("elementwise", "backward", "epilogue", "epilogue-tma", "prologue"):
        from ..compiler import compile_expr, expression_module

        module = expression_module(compile_expr(job.expr, job.mode, clip=job.clip), interpreted=False)
        if job.kind == "elementwise":
            return cc.compile_elementwise(module, arch=job.arch, storage=job.storage)
        if job.kind == "backward":
            return cc.compile_backward(module, arch=job.arch, storage=job.storage)
        if job.kind == "epilogue-tma":
            from ..codegen.compile_tma import compile_epilogue_tma

            return compile_epilogue_tma(module, arch=job.arch, storage=job.storage, config=job.config,
                                        input_precision=job.precision, HAS_SCALE=True)
        compile_matmul = cc.compile_epilogue if job.kind == "epilogue" else cc.compile_prologue
        flags = {"HAS_SCALE": True} if job.kind == "epilogue" else {}
        return compile_matmul(module, arch=job.arch, storage=job.storage, config=job.config,
                              input_precision=job.precision, **flags)
    if job.kind == "copy":
        from ..runtime.kernels import family

        # as many elements a program as exprc's element-wise tile at ViT's width
        block_m, block_d, num_warps = family("elementwise", interpreted=False).launch_config(
            1 << 16, sb.VIT_D, ELEMENT_SIZE[job.storage])
        return sb.compile_copy(arch=job.arch, storage=job.storage, block=block_m * block_d, num_warps=num_warps)
    if job.kind == "tutorial-matmul":
        return sb.compile_tutorial_matmul(arch=job.arch, storage=job.storage, config=job.config)
    if liger_ops is None:
        raise RuntimeError("liger-kernel's sources were not found (pip install liger-kernel, or --liger-dir)")
    from ..compiler import cache_dir

    kernel = sb.liger_kernel(job.kind, Path(liger_ops), cache_dir() / "baselines")
    if job.kind == "liger-layernorm":
        return sb.compile_liger_layernorm(kernel, arch=job.arch, storage=job.storage)
    return sb.compile_liger_dyt(kernel, arch=job.arch, storage=job.storage, block_n=job.config[0],
                                num_warps=job.config[1])


def compile_job(job: Job, liger_ops: str | None) -> dict:
    """Compile one job and read its cubin: the JSON record of the kernel (run in a worker process)."""
    os.environ.pop("TRITON_INTERPRET", None)
    _torch_stub()
    k = _compile(job, liger_ops)
    p = k.profile()
    threads = k.num_warps * 32
    loop = [p.before_loop, p.loop_body, p.after_loop]
    if job.kind == "epilogue-tma":  # persistent: the epilogue follows the K loop inside the tile loop
        from ..codegen.compile_tma import epilogue_split

        s = epilogue_split(k.sass())
        counted, mufu, loop = s.epilogue, s.epilogue_mufu, [s.before + s.tile_head, s.k_loop, s.epilogue]
    elif job.kind in ("epilogue", "prologue", "tutorial-matmul"):  # the epilogue: after the K loop
        counted, mufu = p.after_loop, p.loop_mufu[2]
    elif p.has_loop:  # the backward kernel: one iteration of its row loop
        counted, mufu = p.loop_body, p.loop_mufu[1]
    else:
        counted, mufu = p.main, p.mufu
    return {"kind": job.kind, "storage": job.storage, "code": job.code, "config": job.config_name,
            "precision": job.precision, "registers": k.registers, "spills": k.stack, "num_warps": k.num_warps,
            "shared": k.shared, "ctas_per_sm": ctas_per_sm(job.arch, k.registers, k.num_warps, k.shared),
            "elements": k.elements, "instructions": p.main, "mufu": p.mufu, "mufu_ops": p.mufu_ops,
            "calls": p.calls, "cold": p.cold, "loop": loop,
            "conversions": sum(p.opcodes.get(op, 0) for op in CONVERSIONS),
            "per_element": {"instructions": round(counted * threads / k.elements, 3),
                            "mufu": round(mufu * threads / k.elements, 3)}}


# Per SM: 64K registers (allocated per warp in units of 256), 2048 threads, 32 CTAs; shared memory (bytes) usable
# by CTAs, each of which also reserves 1 KB (CUDA occupancy calculator: sm_90 228 KB, sm_80 164 KB).
SM_SHARED = {90: 228 * 1024, 80: 164 * 1024}


def ctas_per_sm(arch: int, registers: int | None, num_warps: int, shared: int) -> int | None:
    """How many programs of a kernel fit on one SM at once (registers, threads, shared memory)."""
    if not registers:
        return None
    per_warp = -(-registers * 32 // 256) * 256
    by_registers = (65536 // per_warp) // num_warps
    by_threads = 2048 // (num_warps * 32)
    by_shared = SM_SHARED.get(arch, SM_SHARED[80]) // (shared + 1024)
    return min(by_registers, by_threads, by_shared, 32)


def _safe_compile_job(job: Job, liger_ops: str | None) -> dict:
    """compile_job, a failure recorded in the record (the sweep goes on)."""
    try:
        return compile_job(job, liger_ops)
    except Exception as e:  # noqa: BLE001 - any compiler failure is this kernel's result
        where = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return {"kind": job.kind, "storage": job.storage, "code": job.code, "config": job.config_name,
                "precision": job.precision, "error": where[:300]}


CHECKPOINT_EVERY = 200  # kernels: a long sweep writes what it has so far (marked incomplete)


def run_jobs(jobs: list[Job], workers: int, liger_ops: str | None, progress=print,
             checkpoint=None) -> list[tuple[Job, dict]]:
    """Compile every job, `workers` at a time in fresh processes (no interpreter state); (job, record) in order.
    `checkpoint(done)` is called with the (job, record) pairs so far every CHECKPOINT_EVERY kernels."""
    records: list[dict] = []
    started = time.perf_counter()

    def done(record: dict) -> None:
        records.append(record)
        n = len(records)
        if progress and (n == len(jobs) or n % 50 == 0):
            progress(f"  {n}/{len(jobs)} kernels compiled ({time.perf_counter() - started:.0f} s)")
        if checkpoint and n % CHECKPOINT_EVERY == 0 and n < len(jobs):
            checkpoint(list(zip(jobs[:n], records, strict=True)))

    if workers <= 1:
        for job in jobs:
            done(_safe_compile_job(job, liger_ops))
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for record in pool.map(_safe_compile_job, jobs, [liger_ops] * len(jobs)):
                done(record)
    return list(zip(jobs, records, strict=True))


# The files each kind of kernel's SASS depends on besides Triton and the expression's own code (plus COMMON).
KIND_SOURCES = {
    "elementwise": ("runtime/kernels/elementwise.py", "runtime/kernels/widen.py"),
    "backward": ("runtime/kernels/elementwise_backward.py", "runtime/kernels/widen.py"),
    "epilogue": ("runtime/kernels/matmul_epilogue.py", "runtime/kernels/grouped_tiles.py",
                 "runtime/kernels/k_slices.py", "runtime/kernels/norm_epilogue.py"),
    "epilogue-tma": ("runtime/kernels/matmul_epilogue_tma.py", "runtime/kernels/tma_tiles.py",
                     "runtime/kernels/grouped_tiles.py", "runtime/kernels/k_slices.py",
                     "runtime/kernels/norm_epilogue.py", "codegen/compile_tma.py"),
    "prologue": ("runtime/kernels/matmul_prologue.py", "runtime/kernels/grouped_tiles.py",
                 "runtime/kernels/k_slices.py"),
}
BASELINE_SOURCES = ("benchmarks/static_baselines.py",)
COMMON_SOURCES = ("codegen/compile_check.py", "codegen/sass.py")


def kernel_sources() -> dict[str, str]:
    """Digests (by path under exprc/) of the sources a kernel's SASS depends on besides Triton and the expression's
    own code: the kernel families, the baselines, and how kernels are compiled and counted. A run with the same
    Triton may take an earlier run's record of a kernel instead of compiling it again when the files that kind of
    kernel depends on (`sources_of`) have the same digests."""
    import hashlib

    here = Path(__file__).resolve().parents[1]
    names = sorted({n for names in KIND_SOURCES.values() for n in names} | set(BASELINE_SOURCES) | set(COMMON_SOURCES))
    return {n: hashlib.sha256((here / n).read_bytes()).hexdigest()[:12] for n in names if (here / n).exists()}


def sources_of(kind: str) -> tuple[str, ...]:
    return KIND_SOURCES.get(kind, BASELINE_SOURCES) + COMMON_SOURCES


def _record_key(kind: str, storage: str, code, config, precision) -> tuple:
    return (kind, storage, code, config, precision)


def reusable(path: Path, version: str) -> dict[tuple, dict]:
    """The kernel records of the `version` run in the document at `path`, keyed for reuse, of the kinds whose
    sources (`sources_of`) are unchanged since that run."""
    try:
        run = json.loads(path.read_text())["runs"][version]
    except (OSError, ValueError, KeyError):
        return {}
    then, now = run.get("sources") or {}, kernel_sources()
    same = {kind for kind in {r["kind"] for r in run["kernels"]}
            if all(n in now and then.get(n) == now[n] for n in sources_of(kind))}
    return {_record_key(r["kind"], r["storage"], r["code"], r["config"], r["precision"]): r
            for r in run["kernels"] if "error" not in r and r["kind"] in same}


def other_kinds(path: Path, version: str, kinds: set[str]) -> tuple[list[dict], bool]:
    """The records of kinds other than `kinds` in the `version` section of the document at `path` (a `--kinds` run
    replaces only its own kinds' records), and whether that section was a complete sweep."""
    try:
        run = json.loads(path.read_text())["runs"][version]
    except (OSError, ValueError, KeyError):
        return [], True
    return [r for r in run["kernels"] if r["kind"] not in kinds], run.get("complete", True)


def make_run(results: list[tuple[Job, dict]], codes: dict, *, arch: int, subset: bool, layers_path: str,
             complete: bool = True, planned: int | None = None, kept: tuple[dict, ...] = ()) -> dict:
    """One Triton version's section of static-sm<arch>.json (with `kept`: records of other kinds carried over from
    the section a `--kinds` run updates)."""
    import triton

    from .. import __version__

    kernels = list(kept) + [r for job, r in results if job.arch == arch]
    spilled = [r for r in kernels if r.get("spills")]
    return {
        "triton": triton.__version__, "exprc": __version__, "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "subset": subset, "complete": complete,
        "planned": len(kept) + planned if planned is not None else len(kernels),
        "layer_file": Path(layers_path).name, "sources": kernel_sources(),
        "summary": {"kernels": len(kernels), "spilled": len(spilled), "failed": sum("error" in r for r in kernels),
                    "max_registers": max((r["registers"] or 0 for r in kernels if "registers" in r), default=0)},
        "layers": codes, "kernels": kernels,
    }


def write_document(path: Path, arch: int, run: dict) -> dict:
    """Put `run` into the document at `path` (its Triton version's section replaced, others kept); one kernel a
    line, so that a new run reads as a diff."""
    from .static_report import budgets

    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT or doc.get("arch") != arch:
            doc = {}
    except (OSError, ValueError):
        doc = {}
    runs = {**doc.get("runs", {}), run["triton"]: run}
    doc = {"format": FORMAT, "arch": arch, "definitions": DEFINITIONS, "budgets": budgets(arch),
           "runs": dict(sorted(runs.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(_dumps(doc))
    os.replace(tmp, path)
    return doc


def _dumps(doc: dict) -> str:
    lines = ["{"]
    head = {k: v for k, v in doc.items() if k != "runs"}
    lines += [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append(' "runs": {')
    for i, (version, run) in enumerate(doc["runs"].items()):
        lines.append(f"  {json.dumps(version)}: {{")
        lines += [f"   {json.dumps(k)}: {json.dumps(v)}," for k, v in run.items() if k not in ("layers", "kernels")]
        lines.append('   "layers": {')
        lines.append(",\n".join(f"    {json.dumps(n)}: {json.dumps(m)}" for n, m in run["layers"].items()))
        lines.append("   },")
        lines.append('   "kernels": [')
        lines.append(",\n".join(f"    {json.dumps(k)}" for k in run["kernels"]))
        lines.append("   ]")
        lines.append("  }" + ("," if i < len(doc["runs"]) - 1 else ""))
    lines.append(" }")
    return "\n".join(lines) + "\n}\n"


# -- command line -------------------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", metavar="FILE", help="layer file (default: the paper's 25 layers)")
    p.add_argument("--modes", default=None, help="exprc modes, comma-separated (default: all)")
    p.add_argument("--dtypes", default=None, help="storage dtypes, comma-separated (default: float32,bfloat16,float16)")
    p.add_argument("--arch", default="90,80", help="compute capabilities, comma-separated (default 90,80)")
    p.add_argument("--subset", action="store_true", help="the fixed representative subset CI compiles")
    p.add_argument("--kinds", default=None, help="only these kinds of kernel, comma-separated (e.g. epilogue-tma)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiler processes (default: CPUs)")
    p.add_argument("--results-dir", metavar="DIR", help="where static-sm<arch>.json goes (default bench/results; "
                                                        "for --subset a new temporary directory, printed)")
    p.add_argument("--liger-dir", metavar="DIR", help="liger_kernel/ops of an installed liger-kernel (default: "
                                                      "this environment's)")
    p.add_argument("--no-reuse", action="store_true",
                   help="compile every kernel, even those the last run of this Triton recorded from the same sources")
    p.add_argument("--readme", default="README.md", metavar="FILE",
                   help="whose '<!-- static:begin -->' block to rewrite after a full sweep ('' for none)")


def _csv(text: str | None, default: tuple) -> tuple:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else default


def run(args: argparse.Namespace) -> int:
    """Run the sweep on this Triton; exit status 1 when a kernel spilled or failed to compile."""
    from ..frontend.layer_files import read_layers
    from ..compiler import ALL_MODES
    from .static_baselines import liger_dir
    from .static_cases import STORAGES

    layers_path = args.layers or str(DEFAULT_LAYERS)
    modes, storages = _csv(args.modes, ALL_MODES), _csv(args.dtypes, STORAGES)
    archs = tuple(int(a) for a in _csv(args.arch, ("90", "80")))
    liger = args.liger_dir or (str(liger_dir()) if liger_dir() else None)
    jobs, codes = sweep(read_layers(layers_path), modes, storages, archs, subset=args.subset,
                        only=_csv(args.kinds, ()) or None)
    results_dir = args.results_dir or (tempfile.mkdtemp(prefix="exprc-static-") if args.subset else "bench/results")
    import triton

    archs = tuple(sorted({job.arch for job in jobs}, reverse=True))
    print(f"exprc bench static: {len(jobs)} kernels, Triton {triton.__version__}, sm_{'/sm_'.join(map(str, archs))}, "
          f"{args.jobs} processes", flush=True)
    kinds = {job.kind for job in jobs}
    before = {arch: other_kinds(Path(results_dir) / f"static-sm{arch}.json", triton.__version__, kinds)
              if args.kinds else ([], True) for arch in archs}

    def save(done: list[tuple[Job, dict]], complete: bool) -> None:
        for arch in archs:
            write_document(Path(results_dir) / f"static-sm{arch}.json", arch,
                           make_run(done, codes, arch=arch, subset=args.subset, layers_path=layers_path,
                                    complete=complete and before[arch][1], planned=sum(j.arch == arch for j in jobs),
                                    kept=tuple(before[arch][0])))

    known = {} if args.no_reuse else {
        (arch, *key): r for arch in archs
        for key, r in reusable(Path(results_dir) / f"static-sm{arch}.json", triton.__version__).items()}
    reused = {j: known[(j.arch, *_record_key(j.kind, j.storage, j.code, j.config_name, j.precision))] for j in jobs
              if (j.arch, *_record_key(j.kind, j.storage, j.code, j.config_name, j.precision)) in known}
    if reused:
        print(f"  {len(reused)} kernels taken from the last run of this Triton (same kernel sources; --no-reuse to "
              "compile them again)", flush=True)
    todo = [j for j in jobs if j not in reused]

    def merged(done: list[tuple[Job, dict]]) -> list[tuple[Job, dict]]:
        return list(reused.items()) + done

    compiled = run_jobs(todo, args.jobs, liger, checkpoint=lambda done: save(merged(done), False))
    results = merged(compiled)
    save(results, True)
    status = 0
    for arch in archs:
        path = Path(results_dir) / f"static-sm{arch}.json"
        summary = json.loads(path.read_text())["runs"][triton.__version__]["summary"]
        print(f"{path}: {summary['kernels']} kernels, {summary['spilled']} spilled, {summary['failed']} failed, "
              f"at most {summary['max_registers']} registers")
        status |= bool(summary["spilled"] or summary["failed"])
    for job, r in results:
        if r.get("spills") or "error" in r:
            what = r.get("error") or f"spills {r['spills']} bytes"
            print(f"  sm_{job.arch} {job.kind} {job.storage} {job.mode or ''} {r['config'] or ''}: {what}",
                  file=sys.stderr)
    if args.readme and not args.subset:
        from .static_report import update_readme

        changed = update_readme(args.readme, results_dir)
        print(f"{args.readme}: static table {'updated' if changed else 'already up to date'}")
    return status


def run_under(python: str, argv: list[str]) -> int:
    """Run `python -m exprc.benchmarks.static argv` (another Triton's environment; it needs no torch), with this
    checkout on its path and this environment's liger-kernel sources."""
    from .static_baselines import liger_dir

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    extra = ["--liger-dir", str(liger_dir())] if liger_dir() and "--liger-dir" not in argv else []
    return subprocess.run([python, "-m", "exprc.benchmarks.static", *argv, *extra], env=env).returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exprc.benchmarks.static", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
