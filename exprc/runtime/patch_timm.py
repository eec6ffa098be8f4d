"""`patch_timm(model, layers)`: every LayerNorm of a timm VisionTransformer replaced by its `ExprNorm`, and with
`fuse=True` the blocks rewired so that each norm runs inside the matmul that produces its input.

Fused, one block is (x the residual stream, h = norm1(x) from the previous kernel):

    a      = attention(h) up to its output projection
    x, h   = attn.proj(a) * ls1 + x,  norm2(x)              one kernel (`linear_residual_norm`)
    m      = mlp(h) up to fc2
    x, h   = mlp.fc2(m) * ls2 + x,    next norm1(x)          one kernel; the last block's next norm is `norm`

The modules and their parameters are untouched (the state dict keys stay those of the original model); only
`model.forward_features` is replaced, on this instance, by the fused loop. The fused loop runs in eval mode
(calls with an attention mask, or in training mode, take timm's own forward with the ExprNorms); the kernels fall
back to eager torch where Triton cannot run (see `fused_linear.kernel_can_run`). The loop calls the blocks'
submodules, not the blocks themselves: hooks registered on a Block (or on `attn.proj`, `mlp.fc2`, the fused
norms) do not fire in it. A model without a final `norm` (pooling, then `fc_norm`) ends with a plain add.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MethodType, ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ExprcError
from ..ir import Node
from .expr_norm import BACKENDS, ExprNorm
from .fused_linear import epilogue_module_for, linear_residual_norm


@dataclass(frozen=True)
class LayerSpec:
    """What replaces one LayerNorm: f as IR or a generated element-wise module, and its fused-epilogue module
    (None: generated from `ir` when needed)."""

    name: str
    expr_text: str
    ir: Node | None = None
    kernel: ModuleType | None = None  # from a compiled directory
    epilogue: ModuleType | None = None
    mode: str | None = None  # the directory's mode (None: patch_timm's)


class _Fusion:
    """Per-model fusion state: the epilogue kernel of each fused norm. Shared, not copied, by deepcopy."""

    def __init__(self, epilogues: dict[str, ModuleType], backend: str):
        self.epilogues = epilogues
        self.backend = backend

    def __deepcopy__(self, memo):
        return self


# -- layers ----------------------------------------------------------------------------------------------------
def _specs_from_directory(path: Path) -> dict[str, LayerSpec]:
    from ..frontend.functions import DEFAULT_CLIP
    from .kernel_module import import_kernel_source
    from .load import read_manifest

    manifest, contents = read_manifest(path)
    modules: dict[str, ModuleType] = {}

    def module(file: str | None) -> ModuleType | None:
        if file is None or file not in contents:
            return None
        if file not in modules:
            modules[file] = import_kernel_source(path / file, contents[file])
        return modules[file]

    options = manifest.get("options", {})
    clip, mode = tuple(options.get("clip", DEFAULT_CLIP)), options.get("mode", "precise")
    specs = {}
    for entry in manifest["layers"]:
        ir = None
        if module(entry.get("epilogue")) is None:  # compiled without epilogues: regenerate from the expression
            from ..frontend.parse import parse

            ir = parse(entry["expr"], clip)
        specs[entry["name"]] = LayerSpec(entry["name"], entry["expr"], ir, module(entry["kernel"]),
                                         module(entry.get("epilogue")), mode)
    return specs


def resolve_layers(layers: Any) -> dict[str, LayerSpec]:
    """Layer name -> LayerSpec from a layer file path, a compiled kernel directory, a LayerSet, or a mapping of
    name -> expression text (or IR)."""
    from ..frontend.layer_files import read_layers
    from ..frontend.layer_set import LayerSet

    if isinstance(layers, (str, os.PathLike)):
        path = Path(layers)
        if path.is_dir() and (path / "manifest.json").exists():
            return _specs_from_directory(path)
        layers = read_layers(path)
    elif isinstance(layers, Mapping) and layers and all(isinstance(v, Node) for v in layers.values()):
        from ..ir import print_ir

        return {name: LayerSpec(name, print_ir(ir).replace("\n", "; "), ir) for name, ir in layers.items()}
    elif isinstance(layers, Mapping):
        layers = read_layers(layers)
    if not isinstance(layers, LayerSet):
        raise ExprcError(f"layers must be a layer file, a compiled kernel directory, a LayerSet or a mapping of "
                         f"layer name -> expression, not {type(layers).__name__}")
    return {layer.name: LayerSpec(layer.name, layer.expr, layer.ir) for layer in layers}


def _where(layers: Any) -> str:
    if isinstance(layers, (str, os.PathLike)):
        return str(layers)
    return getattr(layers, "source", None) or "layers"


# -- norm replacement --------------------------------------------------------------------------------------------
def _expr_norm_for(ln: nn.LayerNorm, spec: LayerSpec, mode: str, backend: str) -> ExprNorm:
    ref = ln.weight
    norm = ExprNorm(tuple(ln.normalized_shape), spec.kernel if spec.kernel is not None else spec.ir, mode=mode,
                    backend=backend, elementwise_affine=ln.elementwise_affine,
                    bias=getattr(ln, "bias", None) is not None, expr_text=spec.expr_text,
                    device=ref.device if ref is not None else None, dtype=ref.dtype if ref is not None else None)
    with torch.no_grad():
        if ln.weight is not None:
            norm.weight.copy_(ln.weight)
        if getattr(ln, "bias", None) is not None:
            norm.bias.copy_(ln.bias)
    return norm.train(ln.training)


def match_layer_norms(model: nn.Module, specs: dict[str, LayerSpec], where: str = "layers") -> dict[str, nn.LayerNorm]:
    """The model's nn.LayerNorms by name; raises unless `specs` names exactly these."""
    norms = {name: m for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    missing = [n for n in norms if n not in specs]
    if missing:
        raise ExprcError(f"no expression for layer(s) {', '.join(missing)} of the model "
                         f"({len(norms)} LayerNorms; the file has {len(specs)} layers)", where=where)
    extra = [n for n in specs if n not in norms]
    if extra:
        raise ExprcError(f"layer(s) {', '.join(extra)} are not LayerNorms of this model (a file for another "
                         "model?)", where=where)
    return norms


def replace_norms(model: nn.Module, norms: dict[str, nn.LayerNorm], specs: dict[str, LayerSpec], mode: str,
                  backend: str) -> None:
    """Swap each LayerNorm in `norms` for its ExprNorm (affine copied); all are built before any is swapped."""
    replacements = {name: _expr_norm_for(ln, specs[name], mode, backend) for name, ln in norms.items()}
    for name, norm in replacements.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, norm)


# -- fusion ------------------------------------------------------------------------------------------------------
def _layer_scale(ls: nn.Module) -> torch.Tensor | None:
    return None if isinstance(ls, nn.Identity) else ls.gamma


def _check_fusable(model: nn.Module) -> None:
    """Raise unless `model` (not yet patched) has the structure `fused_forward_features` computes."""
    from timm.layers import Attention, DropPath, LayerScale, Mlp
    from timm.models.vision_transformer import Block, VisionTransformer

    if not isinstance(model, VisionTransformer):
        raise ExprcError(f"fuse=True supports timm VisionTransformer models (vit_*, deit_*), not "
                         f"{type(model).__name__}; use fuse=False to only replace the norms")

    def refuse(what: str) -> ExprcError:
        return ExprcError(f"cannot fuse this model: {what}; patch it with fuse=False (norms replaced, unfused)",
                          where=type(model).__name__)

    if not isinstance(model.blocks, nn.Sequential) or len(model.blocks) == 0:
        raise refuse("model.blocks is not a non-empty nn.Sequential")
    for i, blk in enumerate(model.blocks):
        if type(blk) is not Block:
            raise refuse(f"blocks.{i} is a {type(blk).__name__}, only timm's pre-norm Block is supported")
        if type(blk.attn) is not Attention or type(blk.mlp) is not Mlp:
            raise refuse(f"blocks.{i} has {type(blk.attn).__name__}/{type(blk.mlp).__name__}, only timm's "
                         "Attention and Mlp are supported")
        for part in ("ls1", "ls2"):
            if not isinstance(getattr(blk, part), (nn.Identity, LayerScale)):
                raise refuse(f"blocks.{i}.{part} is a {type(getattr(blk, part)).__name__}")
        for part in ("drop_path1", "drop_path2"):
            if not isinstance(getattr(blk, part), (nn.Identity, DropPath)):
                raise refuse(f"blocks.{i}.{part} is a {type(getattr(blk, part)).__name__}")
        for part in ("norm1", "norm2"):
            if not isinstance(getattr(blk, part), nn.LayerNorm):
                raise refuse(f"blocks.{i}.{part} is a {type(getattr(blk, part)).__name__}, not a LayerNorm")
    if not isinstance(model.norm, (nn.LayerNorm, nn.Identity)):
        raise refuse(f"model.norm is a {type(model.norm).__name__}")


def _attention_before_proj(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's Attention.forward (eval, no mask) up to, not including, `proj`."""
    B, N, _ = x.shape
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if attn.fused_attn:
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0)
    else:
        weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        o = attn.attn_drop(weights) @ v
    o = attn.norm(o.transpose(1, 2).reshape(B, N, attn.num_heads * attn.head_dim))
    return o * gate if gate is not None else o


def _mlp_before_fc2(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's Mlp.forward up to, not including, `fc2`."""
    return mlp.norm(mlp.drop1(mlp.act(mlp.fc1(x))))


def fused_forward_features(model: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """The fused replacement of `VisionTransformer.forward_features` (bound to the model by `patch_timm`)."""
    masked = any(a is not None and a is not False for a in (*args, *kwargs.values()))
    if model.training or masked:  # dropout, drop-path, masks: timm's own forward with the ExprNorms
        return type(model).forward_features(model, x, *args, **kwargs)
    fusion: _Fusion = model._exprc_fusion
    x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
    blocks = list(model.blocks)
    h = blocks[0].norm1(x)
    for i, blk in enumerate(blocks):
        proj = blk.attn.proj
        x, h = linear_residual_norm(_attention_before_proj(blk.attn, h), proj.weight, proj.bias, blk.norm2,
                                    fusion.epilogues[f"blocks.{i}.norm2"], residual=x,
                                    scale=_layer_scale(blk.ls1), backend=fusion.backend)
        m = _mlp_before_fc2(blk.mlp, h)
        fc2 = blk.mlp.fc2
        last = i == len(blocks) - 1
        next_name = "norm" if last else f"blocks.{i + 1}.norm1"
        next_norm = model.norm if last else blocks[i + 1].norm1
        if isinstance(next_norm, ExprNorm):
            x, h = linear_residual_norm(m, fc2.weight, fc2.bias, next_norm, fusion.epilogues[next_name],
                                        residual=x, scale=_layer_scale(blk.ls2), write_r=not last,
                                        backend=fusion.backend)
        else:  # no final norm (the model pools first and applies fc_norm): the residual add alone
            x = x + blk.ls2(fc2(m))
            h = x
    return h


def _epilogue(spec: LayerSpec, mode: str) -> ModuleType:
    if spec.epilogue is not None:
        return spec.epilogue
    return epilogue_module_for(spec.ir, spec.mode or mode, expr_text=spec.expr_text)


def patch_timm(model: nn.Module, layers: Any, fuse: bool = True, *, mode: str = "precise",
               backend: str = "auto") -> nn.Module:
    """Replace every LayerNorm of a timm VisionTransformer by its ExprNorm; with `fuse`, rewire the blocks so that
    `attn.proj` + residual + `norm2` and `mlp.fc2` + residual + the next `norm1` (the last: `norm`) each run as
    one kernel. Patches `model` in place and returns it.

    layers: a layer file (layers.json, GP-LayerNorm CSV, Kozax front), a directory written by `exprc compile`,
    a LayerSet, or a mapping layer name -> expression text (or IR); it must name exactly the model's LayerNorms.
    mode: the precision mode kernels are generated in (a compiled directory brings its own). backend: `auto`,
    `triton` or `torch`, for the ExprNorms and the fused kernels. With fuse=False any model with LayerNorms can be
    patched; fuse=True needs timm's VisionTransformer with its standard Block, Attention and Mlp.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(model, nn.Module):
        raise ExprcError(f"patch_timm needs a torch.nn.Module, got {type(model).__name__}")
    if any(isinstance(m, ExprNorm) for m in model.modules()):
        raise ExprcError("this model already has ExprNorm layers (patched before?)", where=type(model).__name__)
    if fuse:
        _check_fusable(model)
    specs = resolve_layers(layers)
    norms = match_layer_norms(model, specs, _where(layers))
    epilogues = {}
    if fuse:  # generated (or imported) before the model is touched: a failure leaves it as it was
        fused = [f"blocks.{i}.norm2" for i in range(len(model.blocks))]
        fused += [f"blocks.{i}.norm1" for i in range(1, len(model.blocks))]
        fused += ["norm"] if isinstance(model.norm, nn.LayerNorm) else []
        epilogues = {name: _epilogue(specs[name], mode) for name in fused}
    replace_norms(model, norms, specs, mode, backend)
    if fuse:
        model._exprc_fusion = _Fusion(epilogues, backend)
        model.forward_features = MethodType(fused_forward_features, model)
    return model
