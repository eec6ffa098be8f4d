"""THE driver: expression text, IR or a layer set, and a mode -> the compiled artifact.

This is the only module that parses, optimizes and generates. Everything that needs compiled code calls it: the
CLI (`compile`, `check`, `cost`, `explain`), `exprc.load`, `ExprNorm`, the fused modules and `patch_timm`.

    compile_expr(text | ir, mode)      -> CompiledExpr: IR, the IR after every pass, its derivative, generated
                                          source, cost; mode "auto" (the default): the lowering of each storage
                                          dtype chosen by error budget (`passes/auto_lowering.py`)
    compile_layers(layer_set, mode)    -> Artifact: one CompiledExpr per distinct expression, a plan per layer
    write_package(artifact, out_dir)   -> the kernels directory (see `codegen/package_writer.py`)
    expression_module(compiled)        -> the generated module, imported (written into the kernel cache first)

One naming scheme: a generated module is `e_<16 hex digits>.py`, the digits a hash of the mode and the lowered
IR of f and f', in a kernels directory and in the kernel cache alike. One cache: compiled expressions are kept per
(expression, mode) for the life of the process, and their modules per (source, Triton mode).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from .codegen.emit_triton import emit_expr_function
from .codegen.expr_module import FILE_PREFIX, generate_module_source, module_file_name
from .codegen.planner import Plan, ViTContext, plan_layer
from .cost import dag_flops, flops_optimized, flops_paper
from .errors import ExprcError
from .frontend.functions import DEFAULT_CLIP
from .frontend.layer_set import LayerSet
from .frontend.parse import parse
from .ir import Node, print_ir
from .passes.auto_lowering import AutoChoice, element_cost
from .passes.auto_lowering import choose as choose_lowering
from .passes.pipeline import MODES, PipelineResult, optimize, optimize_derivative

DEFAULT_MODE = "auto"
ALL_MODES = ("auto",) + MODES


@dataclass(frozen=True)
class CompiledExpr:
    """One expression compiled in one mode."""

    key: str  # e_<hash of mode and lowered IR>: the module's name
    ir: Node  # as parsed (before any pass)
    result: PipelineResult  # the IR after every pass; `.root` is what code generation consumed
    grad: PipelineResult  # the derivative f', from `result.optimized`, after every pass; `.root` is lowered
    sources: tuple[str, ...]  # the expression text(s) that compile to this (empty when given as IR)
    cost: dict[str, int] = field(compare=False)  # flops_paper, flops_optimized, flops_code, flops_grad
    auto: AutoChoice | None = field(default=None, compare=False)  # auto mode: each storage dtype's lowering, why
    # auto mode: storage dtype -> the lowered forward IR where it differs from `result.root` (f32's lowering)
    storage_roots: tuple[tuple[str, Node], ...] = ()

    @property
    def mode(self) -> str:
        return "auto" if self.auto is not None else self.result.mode

    def root_for(self, storage: str) -> Node:
        """The lowered forward IR a kernel storing `storage` ("float32", "bfloat16", "float16") runs."""
        return dict(self.storage_roots).get(storage, self.root)

    @property
    def root(self) -> Node:
        return self.result.root

    @property
    def file_name(self) -> str:
        return module_file_name(self.key)

    def triton_function(self) -> str:
        """The expression as the `@triton.jit` function the kernels call."""
        return emit_expr_function(self.root, "expr_fn")

    def code_text(self, storage: str = "float32", *, grad: bool = False) -> str:
        """The Triton code a kernel storing `storage` runs: f (as `fn0`), and f' (as `fn1`) when `grad`."""
        roots = (self.root_for(storage), self.grad.root) if grad else (self.root_for(storage),)
        return "\n".join(emit_expr_function(r, f"fn{i}") for i, r in enumerate(roots))

    def element_cost(self, mode: str = "precise"):
        """Estimated instructions and MUFU operations per element of f lowered in `mode` (auto_lowering)."""
        return element_cost(self.result.optimized, mode)

    def source(self) -> str:
        """The generated module's Python source."""
        short = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
        other = {s: m for s, m in (self.auto.modes().items() if self.auto else ()) if m != self.result.mode}
        note = " (" + ", ".join(f"{short[s]}: {m}" for s, m in other.items()) + ")" if other else ""
        return generate_module_source(self.key, self.root, grad_root=self.grad.root, optimized=self.result.optimized,
                                      expressions=self.sources, mode=self.mode, cost=self.cost,
                                      storage_roots=dict(self.storage_roots), mode_note=note)


_COMPILED: dict[tuple, CompiledExpr] = {}


def expression_key(root: Node, grad: Node, mode: str, storage_roots: tuple[tuple[str, Node], ...] = ()) -> str:
    """The name of the module of the lowered IR `root` and its lowered derivative `grad` in `mode` (and auto mode's
    per-storage forward IRs)."""
    text = f"{mode}\n{print_ir(root)}\n{print_ir(grad)}" + "".join(f"\n{s}\n{print_ir(r)}" for s, r in storage_roots)
    return FILE_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def compile_expr(expr: str | Node, mode: str = DEFAULT_MODE, *, clip: tuple[float, float] = DEFAULT_CLIP,
                 trace: bool = False) -> CompiledExpr:
    """Parse (text), optimize and lower `expr` in `mode`. Cached per (expression, mode, clip) unless traced.

    auto: f32 storage is lowered precisely (no cheaper lowering can be proven within f32's budget), each 16-bit
    storage dtype by the cheapest lowering proven within its budget (`AutoChoice`, `CompiledExpr.auto`)."""
    if mode not in ALL_MODES:
        raise ExprcError(f"unknown mode {mode!r}: expected one of {', '.join(ALL_MODES)}")
    if isinstance(expr, str):
        cache_key = ("text", expr, mode, tuple(clip))
    elif isinstance(expr, Node):
        cache_key = ("ir", print_ir(expr), mode)
    else:
        raise TypeError(f"an expression is text or an IR Node, not {type(expr).__name__}")
    if not trace and cache_key in _COMPILED:
        return _COMPILED[cache_key]
    ir = parse(expr, tuple(clip)) if isinstance(expr, str) else expr
    auto, storage_roots = None, ()
    if mode == "auto":
        auto = choose_lowering(optimize(ir, "precise").optimized)
        result = optimize(ir, auto.mode("float32"), trace=trace)
        storage_roots = tuple((s, root) for s in ("bfloat16", "float16")
                              if (root := optimize(ir, auto.mode(s)).root) is not result.root)
    else:
        result = optimize(ir, mode, trace=trace)
    grad = optimize_derivative(result.optimized, result.mode, trace=trace)
    cost = {"flops_paper": flops_paper(ir), "flops_optimized": flops_optimized(ir),
            "flops_code": dag_flops(result.root), "flops_grad": dag_flops(grad.root)}
    compiled = CompiledExpr(expression_key(result.root, grad.root, mode, storage_roots), ir, result, grad,
                            (expr,) if isinstance(expr, str) else (), cost, auto, storage_roots)
    if not trace:
        _COMPILED[cache_key] = compiled
    return compiled


# -- layer sets --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerArtifact:
    name: str
    expr: str  # as written in the layer file
    compiled: CompiledExpr
    plan: Plan


@dataclass(frozen=True)
class Artifact:
    """A compiled layer set: what `exprc compile` writes and `patch_timm` carries out."""

    layer_set: LayerSet
    mode: str
    context: ViTContext
    layers: list[LayerArtifact]
    kernels: dict[str, CompiledExpr]  # key -> compiled expression (sources: every text that compiles to it)

    def layer(self, name: str) -> LayerArtifact:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def compile_layers(layer_set: LayerSet, mode: str = DEFAULT_MODE, context: ViTContext | None = None) -> Artifact:
    """Compile every layer of `layer_set` and plan where each runs (`context`: the model around the norms;
    default ViT-B/16 widths)."""
    context = context or ViTContext()
    layers, kernels = [], {}
    for layer in layer_set:
        try:
            compiled = compile_expr(layer.ir, mode)
        except ExprcError as e:
            raise e.with_where(f"{layer_set.source or 'layers'}: layer {layer.name!r}") from None
        known = kernels.get(compiled.key, compiled)
        if layer.expr not in known.sources:
            known = replace(known, sources=(*known.sources, layer.expr))
        kernels[compiled.key] = known
        has_producer, consumer_n = context.site(layer.name)
        storage = "float32" if context.storage_bytes == 4 else "bfloat16"
        lowering = compiled.auto.mode(storage) if compiled.auto is not None else compiled.mode
        plan = plan_layer(compiled.cost["flops_optimized"], has_producer=has_producer, consumer_n=consumer_n,
                          element_cost=element_cost(compiled.result.optimized, lowering),
                          producer_k=context.producer_k(layer.name),
                          storage_bytes=context.storage_bytes)
        layers.append(LayerArtifact(layer.name, layer.expr, compiled, plan))
    layers = [replace(la, compiled=kernels[la.compiled.key]) for la in layers]
    return Artifact(layer_set, mode, context, layers, kernels)


def build_package(layers: Artifact | LayerSet, mode: str = DEFAULT_MODE) -> dict[str, bytes]:
    """File name -> contents of the kernels directory of `layers` (an artifact, or a layer set compiled in
    `mode`), nothing written."""
    from .codegen.package_writer import build_files

    return build_files(layers if isinstance(layers, Artifact) else compile_layers(layers, mode))


def write_package(layers: Artifact | LayerSet, out_dir: str | os.PathLike, mode: str = DEFAULT_MODE) -> Path:
    """Write the kernels directory of `layers` (an artifact, or a layer set compiled in `mode`): the generated
    modules and manifest.json, atomically (see `codegen/package_writer.py`)."""
    from .codegen.package_writer import write_files

    return write_files(layers if isinstance(layers, Artifact) else compile_layers(layers, mode), out_dir)


# -- modules -----------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where modules compiled on the fly are written: $EXPRC_CACHE_DIR, else ~/.cache/exprc/kernels."""
    env = os.environ.get("EXPRC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "exprc" / "kernels"


def expression_module(expr: str | Node | CompiledExpr, mode: str = DEFAULT_MODE, *,
                      interpreted: bool | None = None) -> ModuleType:
    """The generated module of `expr` (text, IR or compiled), written into `cache_dir()` and imported in Triton's
    current mode (compiled, or interpreted under TRITON_INTERPRET=1), or the one `interpreted` says."""
    from .runtime.kernels.support import import_source

    compiled = expr if isinstance(expr, CompiledExpr) else compile_expr(expr, mode)
    data = compiled.source().encode()
    path = cache_dir() / compiled.file_name
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return import_source(path, data, interpreted)
