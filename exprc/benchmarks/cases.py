"""What a bench yields (`Case`: one implementation on one shape) and what a run records (`Row`).

A bench module is a generator of cases; the harness sets each one up, times it and turns it into a row. A case
that cannot run here raises `Skip(reason)` from its setup and becomes a row with `skipped` set to the reason; so
does an `ImportError` of one of the optional packages below. Any other exception is a failure: the row gets
`error` set, and the run reports it and exits non-zero (`skip_reason` draws the line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Skip(Exception):
    """This row cannot run here: an optional dependency is missing, it needs CUDA, or the run's options leave it
    out (--quick, --budget, a layer file without the model's layers). Never for a failure of exprc itself."""


# optional third-party packages (import name -> the pip extra that installs it): an ImportError naming one of
# them skips the row; an ImportError of anything else (exprc's own modules included) is an error
OPTIONAL_PACKAGES = {"liger_kernel": "bench", "matplotlib": "bench", "timm": "timm"}


def skip_reason(e: BaseException) -> str | None:
    """Why `e` makes its row skipped rather than failed; None when it is a failure."""
    if isinstance(e, Skip):
        return str(e) or "skipped"
    if isinstance(e, ImportError):
        top = (e.name or "").partition(".")[0]
        if top in OPTIONAL_PACKAGES:
            return f"{top} is not installed ({e.name}); pip install 'exprc[{OPTIONAL_PACKAGES[top]}]'"
    return None


@dataclass
class Case:
    bench: str  # "kernels" | "epilogue" | "vit"
    impl: str  # e.g. "torch-layernorm", "exprc-precise"
    shape: str  # a label, e.g. "50432x768" or "M6304 K3072 N768"
    dtype: str  # torch dtype name: "float32", "bfloat16"
    setup: Callable[[], Callable[[], Any]]  # builds modules and returns the function to time; may raise Skip
    layer: str | None = None  # for per-layer implementations
    bytes: int | None = None  # memory traffic of one call (-> GB/s)
    flops: float | None = None  # floating-point work of one call (-> TFLOP/s)
    images: int | None = None  # images per call (-> images/s)
    graph: bool = False  # time from a CUDA graph where it can be captured
    check: Callable[[Any], float] | None = None  # output of one call -> max error against a float64 reference
    dims: dict[str, int] = field(default_factory=dict)  # the shape as numbers, for plots and tools
    note: str | None = None
    grad: bool = False  # the timed call records autograd graphs (forward + backward rows)


@dataclass
class Row:
    bench: str
    impl: str
    shape: str
    dtype: str
    layer: str | None = None
    ms: float | None = None
    gbps: float | None = None
    tflops: float | None = None
    images_per_s: float | None = None
    ratio_to: dict[str, float] = field(default_factory=dict)  # baseline impl -> ms / baseline ms
    timer: str | None = None
    max_err: float | None = None
    setup_s: float | None = None  # time to build (and compile) the implementation
    skipped: str | None = None
    error: str | None = None  # "Type: message (at file:line)" of the exception that made this row fail
    dims: dict[str, int] = field(default_factory=dict)
    note: str | None = None
    traceback: str | None = field(default=None, repr=False)  # of `error`; printed by the run, not written

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bench": self.bench, "impl": self.impl, "shape": self.shape, "dtype": self.dtype,
                               "layer": self.layer, "ms": self.ms}
        for key in ("gbps", "tflops", "images_per_s"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["ratio_to"] = dict(self.ratio_to)
        for key in ("timer", "max_err", "setup_s", "skipped", "error", "note"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["dims"] = dict(self.dims)
        return out

    @classmethod
    def from_case(cls, case: Case, **kw: Any) -> Row:
        return cls(case.bench, case.impl, case.shape, case.dtype, case.layer, dims=dict(case.dims), note=case.note,
                   **kw)


def add_ratios(rows: list[Row], baselines: tuple[str, ...], per_layer: tuple[str, ...] = ()) -> None:
    """Fill `ratio_to` of every measured row: its time over each baseline's time on the same shape and dtype.

    `baselines` are layer-less rows; `per_layer` baselines are matched on the same layer too.
    """
    times = {(r.impl, r.shape, r.dtype, r.layer): r.ms for r in rows if r.ms}
    for r in rows:
        if not r.ms:
            continue
        for b in baselines:
            base = times.get((b, r.shape, r.dtype, None))
            if base and b != r.impl:
                r.ratio_to[b] = round(r.ms / base, 4)
        for b in per_layer:
            base = times.get((b, r.shape, r.dtype, r.layer))
            if base and b != r.impl and r.layer is not None:
                r.ratio_to[b] = round(r.ms / base, 4)


MEAN_LAYER = "mean"


def add_layer_means(rows: list[Row]) -> list[Row]:
    """One extra row per per-layer implementation, shape and dtype: the mean time over its layers.

    Its `layer` is "mean" and its note says over how many layers; it is what tables and plots show for
    implementations measured layer by layer. Returns the new rows (also appended to `rows`).
    """
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        if r.layer is not None and r.layer != MEAN_LAYER:
            groups.setdefault((r.bench, r.impl, r.shape, r.dtype), []).append(r)
    new: list[Row] = []
    for (bench, impl, shape, dtype), members in groups.items():
        measured = [m for m in members if m.ms]
        first = members[0]
        row = Row(bench, impl, shape, dtype, MEAN_LAYER, dims=dict(first.dims), timer=first.timer)
        if not measured:
            failed = next((m for m in members if m.error), None)
            if failed:
                row.error = f"no layer measured: {failed.error}"
            else:
                row.skipped = members[0].skipped or "no layer measured"
        else:
            n = len(measured)
            row.ms = sum(m.ms for m in measured) / n
            for key in ("gbps", "tflops", "images_per_s"):  # the rate at the mean time: mean work / mean time
                work = [getattr(m, key) * m.ms for m in measured if getattr(m, key) is not None]
                if work:
                    setattr(row, key, sum(work) / len(work) / row.ms)
            errs = [m.max_err for m in measured if m.max_err is not None]
            row.max_err = max(errs) if errs else None
            row.note = f"mean over {n} of {len(members)} layers"
        new.append(row)
    rows.extend(new)
    return new
