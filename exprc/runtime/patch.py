"""`exprc.patch(model, layers)`: the `nn.LayerNorm` modules of any model replaced by name with `ExprNorm`s.

Works for any `nn.Module` (a Hugging Face or hand-written transformer as well as a timm one): each LayerNorm
named in the layer file becomes the ExprNorm of its expression, with the LayerNorm's affine copied; nothing is
fused (`patch_timm` fuses timm ViTs). Also home of what both share: turning `layers` (a layer file, a kernels
directory, a LayerSet or a mapping) into one compiled expression module and placement per layer.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from ..codegen.planner import ViTContext
from ..errors import ExprcError
from ..ir import Node
from .expr_norm import BACKENDS, ExprNorm


@dataclass(frozen=True)
class LayerSpec:
    """What replaces one LayerNorm: its generated expression module and where the plan runs it."""

    name: str
    expr_text: str
    module: ModuleType  # the generated expression module (expr_fn, expr_torch)
    placement: str  # epilogue | prologue | standalone (see codegen/planner.py)
    reason: str


def _layer_set(layers: Any):
    from ..frontend.layer_files import read_layers
    from ..frontend.layer_set import Layer, LayerSet
    from ..ir import print_ir

    if isinstance(layers, LayerSet):
        return layers
    if isinstance(layers, (str, os.PathLike)):
        return read_layers(Path(layers))
    if isinstance(layers, Mapping) and layers and all(isinstance(v, Node) for v in layers.values()):
        return LayerSet({name: Layer(name, print_ir(ir).replace("\n", "; "), ir) for name, ir in layers.items()})
    if isinstance(layers, Mapping):
        return read_layers(layers)
    raise ExprcError(f"layers must be a layer file, a compiled kernel directory, a LayerSet or a mapping of layer "
                     f"name -> expression, not {type(layers).__name__}")


def resolve_layers(layers: Any, mode: str = "auto", context: ViTContext | None = None) -> dict[str, LayerSpec]:
    """Layer name -> LayerSpec. A kernels directory written by `exprc compile` brings its modules and its plan;
    anything else is compiled here (`exprc.compiler`, in `mode`, planned for `context`)."""
    from ..compiler import compile_layers, expression_module
    from .load import expression_modules

    if isinstance(layers, (str, os.PathLike)) and Path(layers).is_dir() and (Path(layers) / "manifest.json").exists():
        manifest, modules = expression_modules(layers)
        return {e["name"]: LayerSpec(e["name"], e["expr"], modules[e["kernel"]], e["placement"], e.get("reason", ""))
                for e in manifest["layers"]}
    artifact = compile_layers(_layer_set(layers), mode, context)
    return {la.name: LayerSpec(la.name, la.expr, expression_module(la.compiled), la.plan.kind, la.plan.reason)
            for la in artifact.layers}


def where_from(layers: Any) -> str:
    if isinstance(layers, (str, os.PathLike)):
        return str(layers)
    return getattr(layers, "source", None) or "layers"


def match_layer_norms(model: nn.Module, names: list[str], where: str = "layers") -> dict[str, nn.LayerNorm]:
    """The model's nn.LayerNorms by name; raises unless `names` are exactly these, naming every missing and every
    unknown layer (an unknown one with the nearest missing name: a misspelling)."""
    norms = {name: m for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    missing = [n for n in norms if n not in names]
    unknown = [n for n in names if n not in norms]
    if not missing and not unknown:
        return norms
    problems = []
    if unknown:
        def hint(n: str) -> str:
            close = difflib.get_close_matches(n, missing, n=1)
            return f"{n!r} (did you mean {close[0]!r}?)" if close else repr(n)

        problems.append(f"layer(s) {', '.join(hint(n) for n in unknown)} of the file are not LayerNorms of this "
                        "model")
    if missing:
        problems.append(f"no expression for LayerNorm(s) {', '.join(repr(n) for n in missing)} of the model")
    raise ExprcError(f"{'; '.join(problems)} (the model has {len(norms)} LayerNorms, the file {len(names)} layers)",
                     where=where)


def expr_norm_for(ln: nn.LayerNorm, spec: LayerSpec, backend: str) -> ExprNorm:
    """The ExprNorm of `spec` with `ln`'s shape, device, dtype, training mode and a copy of its affine."""
    ref = ln.weight
    norm = ExprNorm(tuple(ln.normalized_shape), spec.module, backend=backend,
                    elementwise_affine=ln.elementwise_affine, bias=getattr(ln, "bias", None) is not None,
                    expr_text=spec.expr_text, device=ref.device if ref is not None else None,
                    dtype=ref.dtype if ref is not None else None)
    with torch.no_grad():
        if ln.weight is not None:
            norm.weight.copy_(ln.weight)
        if getattr(ln, "bias", None) is not None:
            norm.bias.copy_(ln.bias)
    return norm.train(ln.training)


def replace_norms(model: nn.Module, norms: dict[str, nn.LayerNorm], specs: dict[str, LayerSpec],
                  backend: str) -> None:
    """Swap each LayerNorm in `norms` for its ExprNorm; all are built before any is swapped."""
    replacements = {name: expr_norm_for(ln, specs[name], backend) for name, ln in norms.items()}
    for name, norm in replacements.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, norm)


def check_patchable(model: Any, backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(model, nn.Module):
        raise ExprcError(f"patching needs a torch.nn.Module, got {type(model).__name__}")
    if any(isinstance(m, ExprNorm) for m in model.modules()):
        raise ExprcError("this model already has ExprNorm layers (patched before?)", where=type(model).__name__)


def patch(model: nn.Module, layers: Any, *, mode: str = "auto", backend: str = "auto") -> nn.Module:
    """Replace the `nn.LayerNorm`s of any model, by name, with the ExprNorms of `layers` (unfused); in place.

    layers: a layer file (layers.json, GP-LayerNorm CSV, Kozax front), a directory written by `exprc compile`,
    a LayerSet, or a mapping layer name -> expression text (or IR); it must name exactly the model's LayerNorms
    (`dict(model.named_modules())` names). mode: the precision mode expressions are compiled in (a kernels
    directory brings its own). backend: `auto`, `triton` or `torch`.
    """
    check_patchable(model, backend)
    specs = resolve_layers(layers, mode)
    norms = match_layer_norms(model, list(specs), where_from(layers))
    replace_norms(model, norms, specs, backend)
    return model
