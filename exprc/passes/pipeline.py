"""The optimization pipeline: a list of passes, run in order, the IR verified after each.

    fold-constants, simplify, ranges, fuse-clip-tanh, simplify,            optimization_passes(): mode-independent
    lower-transcendentals(mode), simplify, share-exp,                      lowering_passes(mode)
        lower-reciprocal, lower-exp (horner only), fold-constants

The derivative f' (for backward kernels) starts from the forward IR after `optimization_passes()` (before lowering;
`PipelineResult.optimized`), and is optimized and lowered by the very same passes in the same mode:

    forward = optimize(ir, mode)                                   # f: forward.root
    grad = optimize_derivative(forward.optimized, mode)           # f': grad.root
    derivative_pipeline(mode) = (derivative,) + optimization_passes() + lowering_passes(mode)

`optimize` keeps the IR after every pass (`Stage`), which `exprc explain` prints with node counts and times; with
`trace=True` each stage also lists the rules that fired in it, in order (`Stage.fired`: empty when none fired,
None when not traced).
Errors raised inside a pass are re-raised naming the pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import ExprcError
from ..ir import Node, count_nodes, verify
from .derivative import Derivative
from .fold_constants import FoldConstants
from .fuse_clip_tanh import FuseClipTanh
from .lower_exp import LowerExp
from .lower_reciprocal import LowerReciprocal
from .lower_transcendentals import LowerTranscendentals
from .ranges import Ranges
from .rewrite import Fired
from .share_exp import ShareExp
from .simplify import Simplify

MODES = ("precise", "fast", "horner")
LOWERING_STARTS = LowerTranscendentals.name  # the first pass of `lowering_passes`


class Pass(Protocol):
    name: str

    def run(self, root: Node, ctx: "PassContext") -> Node: ...


@dataclass
class PassContext:
    mode: str
    trace: list[Fired] | None = None  # rules that fired, when asked for


@dataclass(frozen=True)
class Stage:
    name: str  # pass name, kebab-case
    root: Node  # IR after the pass
    nodes: int
    seconds: float
    fired: tuple[Fired, ...] | None = None  # rules that fired in this pass, in order; None: not traced


@dataclass(frozen=True)
class PipelineResult:
    root: Node  # final, lowered IR: what code generation consumes
    mode: str
    stages: list[Stage] = field(default_factory=list)

    @property
    def optimized(self) -> Node:
        """The IR after the mode-independent optimization passes, before lowering (the input of the first
        lower-transcendentals pass): what `optimize_derivative` differentiates."""
        for before, stage in zip(self.stages, self.stages[1:], strict=False):
            if stage.name == LOWERING_STARTS:
                return before.root
        raise KeyError(LOWERING_STARTS)

    def after(self, name: str) -> Node:
        """IR after the last pass called `name`."""
        for s in reversed(self.stages):
            if s.name == name:
                return s.root
        raise KeyError(name)


def optimization_passes() -> tuple[Pass, ...]:
    """The mode-independent part: what `flops_optimized` counts."""
    return (FoldConstants(), Simplify(), Ranges(), FuseClipTanh(), Simplify())


def lowering_passes(mode: str) -> tuple[Pass, ...]:
    """The mode-dependent part, after `optimization_passes()`."""
    if mode not in MODES:
        raise ExprcError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    lowering: tuple[Pass, ...] = (LowerTranscendentals(mode), Simplify(), ShareExp())
    if mode == "horner":
        lowering += (LowerReciprocal(), LowerExp())
    return lowering + (FoldConstants(),)


def pipeline(mode: str) -> tuple[Pass, ...]:
    return optimization_passes() + lowering_passes(mode)


def derivative_pipeline(mode: str) -> tuple[Pass, ...]:
    """f -> f': the derivative pass, then the forward's own passes (simplified and lowered the same way)."""
    return (Derivative(),) + optimization_passes() + lowering_passes(mode)


def run_passes(root: Node, passes: tuple[Pass, ...], mode: str, trace: bool = False) -> PipelineResult:
    t = time.perf_counter()
    verify(root)
    stages = [Stage("input", root, count_nodes(root), time.perf_counter() - t)]
    for p in passes:
        ctx = PassContext(mode, [] if trace else None)
        t = time.perf_counter()
        try:
            root = verify(p.run(root, ctx))
        except ExprcError as e:
            raise ExprcError(f"during pass {p.name}: {e.message}", e.span, e.source, e.where) from e
        except RecursionError:
            raise ExprcError(f"during pass {p.name}: expression too deep to optimize") from None
        fired = None if ctx.trace is None else tuple(ctx.trace)
        stages.append(Stage(p.name, root, count_nodes(root), time.perf_counter() - t, fired))
    return PipelineResult(root, mode, stages)


def optimize(root: Node, mode: str = "precise", trace: bool = False) -> PipelineResult:
    """Run the whole pipeline for `mode`; `.root` is the lowered IR code generation consumes."""
    return run_passes(root, pipeline(mode), mode, trace)


def optimize_derivative(forward: Node, mode: str = "precise", trace: bool = False) -> PipelineResult:
    """The derivative f'(x) of `forward`, optimized and lowered for `mode`: `.root` is the lowered IR of f' that
    code generation consumes, `.stages` the IR after each pass (the first, "derivative", is f' unsimplified).

    `forward` is the forward IR after `optimization_passes()` and before lowering: `optimize(ir, mode).optimized`
    (unlowered IR from elsewhere is accepted too; lowered IR is an ExprcError during the derivative pass)."""
    return run_passes(forward, derivative_pipeline(mode), mode, trace)
