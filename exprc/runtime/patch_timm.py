"""`patch_timm(model, layers)`: every LayerNorm of a timm VisionTransformer replaced by its `ExprNorm`, and with
`fuse=True` the blocks rewired to carry out the fusion plan (`exprc explain` prints it; a kernels directory's
manifest.json records it): each norm runs in the epilogue of the matmul that produces its input, in the
prologue of the Linear that consumes it (affine folded into that Linear), or standalone (element-wise kernel).

Fused, one block is (x the residual stream, h = norm1(x) when norm1 is not a prologue):

    a      = attention(h) up to its output projection           qkv(norm1(x)) as one kernel when a prologue
    x, h   = attn.proj(a) * ls1 + x,  norm2(x)                  one kernel when norm2 is an epilogue
    m      = mlp(h) up to fc2                                   fc1(norm2(x)) as one kernel when a prologue
    x, h   = mlp.fc2(m) * ls2 + x,    next norm1(x)             one kernel when that norm is an epilogue; the
                                                                last block's next norm is `norm`

The modules and their parameters are untouched (the state dict keys stay those of the original model); only
`model.forward_features` is replaced, on this instance, by the fused loop. The fused loop also trains (the
epilogue kernels have a backward; a prologue placement runs unfused while autograd records, the prologue having
none); calls with an attention mask, and training with dropout or drop-path between a matmul and its residual
add, take timm's own forward with the ExprNorms. The kernels fall back to the generated torch code where Triton
cannot run (see `fused_linear.kernel_can_run`). The loop calls the blocks'
submodules, not the blocks themselves: hooks registered on a Block (or on `attn.proj`, `mlp.fc2`, the fused
norms) do not fire in it. A model without a final `norm` (pooling, then `fc_norm`) ends with a plain add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..codegen.planner import ViTContext
from ..errors import ExprcError
from .expr_norm import ExprNorm
from .fused_linear import FoldedAffine, linear_residual_norm, norm_linear
from .patch import LayerSpec, check_patchable, match_layer_norms, replace_norms, resolve_layers, where_from


@dataclass
class _Fusion:
    """Per-model fusion state: each norm's placement, and the folded affine of each prologue. Deep copies get
    their own (empty) folds: their parameters are other tensors."""

    placement: dict[str, str]
    backend: str
    folded: dict[str, FoldedAffine] = field(default_factory=dict)

    def __post_init__(self):
        self.folded = {name: FoldedAffine() for name, kind in self.placement.items() if kind == "prologue"}


class FusedForwardFeatures:
    """`model.forward_features` of a fused model: a picklable callable (a bound method of another function would
    not pickle), so that `torch.save(model)` / `pickle.dumps(model)` work and load back fused."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __call__(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return fused_forward_features(self.model, x, *args, **kwargs)


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


def _attention_before_proj(attn: nn.Module, qkv: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
    """timm's Attention.forward (eval, no mask) from `qkv = attn.qkv(h)` up to, not including, `proj`; `h` (the
    normalized input) is only read by a gated attention."""
    B, N, _ = qkv.shape
    gate = attn.gate(h).sigmoid() if getattr(attn, "gate", None) is not None else None
    qkv = qkv.reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if attn.fused_attn:
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)
    else:
        weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        o = attn.attn_drop(weights) @ v
    o = attn.norm(o.transpose(1, 2).reshape(B, N, attn.num_heads * attn.head_dim))
    return o * gate if gate is not None else o


def _mlp_before_fc2(mlp: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """timm's Mlp.forward from `z = mlp.fc1(x)` up to, not including, `fc2`."""
    return mlp.norm(mlp.drop1(mlp.act(z)))


def _drops_in_training(model: nn.Module) -> bool:
    """Whether training `model` drops something between a matmul and the residual add it is fused with (dropout
    after proj or in the MLP, drop-path, patch or positional dropout): then the blocks run timm's forward."""
    for m in model.modules():
        if isinstance(m, nn.Dropout) and m.p > 0 and not _is_attention_dropout(model, m):
            return True
        if type(m).__name__ == "DropPath" and getattr(m, "drop_prob", 0.0) > 0:
            return True
    return not isinstance(model.patch_drop, nn.Identity)


def _is_attention_dropout(model: nn.Module, m: nn.Module) -> bool:
    """attn_drop (on the attention weights, before proj's matmul) is applied by the fused loop as timm does."""
    return any(m is blk.attn.attn_drop for blk in model.blocks)


def fused_forward_features(model: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """The fused replacement of `VisionTransformer.forward_features` (bound to the model by `patch_timm`)."""
    masked = any(a is not None and a is not False for a in (*args, *kwargs.values()))
    if masked or (model.training and _drops_in_training(model)):  # timm's own forward, with the ExprNorms
        return type(model).forward_features(model, x, *args, **kwargs)
    fusion: _Fusion = model._exprc_fusion
    place, backend = fusion.placement, fusion.backend
    x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
    blocks = list(model.blocks)
    h = None if place["blocks.0.norm1"] == "prologue" else blocks[0].norm1(x)
    for i, blk in enumerate(blocks):
        attn, mlp, n1, n2 = blk.attn, blk.mlp, f"blocks.{i}.norm1", f"blocks.{i}.norm2"
        if place[n1] == "prologue":
            qkv = norm_linear(x, blk.norm1, attn.qkv, fusion.folded[n1], backend=backend)
            gate_in = blk.norm1(x) if getattr(attn, "gate", None) is not None else None
            a = _attention_before_proj(attn, qkv, gate_in)
        else:
            a = _attention_before_proj(attn, attn.qkv(h), h)
        if place[n2] == "epilogue":
            x, h = linear_residual_norm(a, attn.proj.weight, attn.proj.bias, blk.norm2, residual=x,
                                        scale=_layer_scale(blk.ls1), backend=backend)
        else:
            x = x + blk.ls1(attn.proj(a))
            h = blk.norm2(x) if place[n2] == "standalone" else None
        if place[n2] == "prologue":
            m = _mlp_before_fc2(mlp, norm_linear(x, blk.norm2, mlp.fc1, fusion.folded[n2], backend=backend))
        else:
            m = _mlp_before_fc2(mlp, mlp.fc1(h))
        last = i == len(blocks) - 1
        next_name = "norm" if last else f"blocks.{i + 1}.norm1"
        next_norm = model.norm if last else blocks[i + 1].norm1
        if not isinstance(next_norm, ExprNorm):  # no final norm (the model pools first, then fc_norm)
            x = x + blk.ls2(mlp.fc2(m))
            h = x
        elif place[next_name] == "epilogue":
            x, h = linear_residual_norm(m, mlp.fc2.weight, mlp.fc2.bias, next_norm, residual=x,
                                        scale=_layer_scale(blk.ls2), write_r=not last, backend=backend)
        else:
            x = x + blk.ls2(mlp.fc2(m))
            h = next_norm(x) if place[next_name] == "standalone" else None
    return h


def vit_context(model: nn.Module) -> ViTContext:
    """The widths the plan of `model`'s norms depends on."""
    return ViTContext(dim=model.embed_dim, mlp_hidden=model.blocks[0].mlp.fc1.out_features)


def _check_plan(model: nn.Module, specs: dict[str, LayerSpec], where: str) -> dict[str, str]:
    """Each fused norm's placement, refusing one this model cannot carry out (a kernels directory compiled for
    another structure, or an edited manifest)."""
    context = vit_context(model)
    placement = {}
    for name, spec in specs.items():
        has_producer, consumer_n = context.site(name)
        possible = {"standalone"} | ({"epilogue"} if has_producer else set()) | ({"prologue"} if consumer_n else set())
        if name == "norm" or name.startswith("blocks.") and name.endswith((".norm1", ".norm2")):
            if spec.placement not in possible:
                raise ExprcError(f"layer {name!r} is planned as {spec.placement!r}, which this model cannot carry "
                                 f"out (possible: {', '.join(sorted(possible))}); recompile the kernels",
                                 where=where)
            placement[name] = spec.placement
    return placement


def patch_timm(model: nn.Module, layers: Any, fuse: bool = True, *, mode: str = "auto",
               backend: str = "auto") -> nn.Module:
    """Replace every LayerNorm of a timm VisionTransformer by its ExprNorm; with `fuse`, carry out the fusion plan
    for inference: each of `norm1`, `norm2` and `norm` runs in the epilogue of the matmul before it (`attn.proj`
    or `mlp.fc2`, with the residual add), in the prologue of the Linear after it (`attn.qkv`, `mlp.fc1`), or
    standalone. Patches `model` in place and returns it.

    layers: a layer file (layers.json, GP-LayerNorm CSV, Kozax front), a directory written by `exprc compile`
    (whose manifest's plan is followed as it is), a LayerSet, or a mapping layer name -> expression text (or
    IR), compiled and planned here for this model's widths; it must name exactly the model's LayerNorms.
    mode: the precision mode for expressions compiled here (a kernels directory brings its own). backend:
    `auto`, `triton` or `torch`, for the ExprNorms and the fused kernels. With fuse=False any model with
    LayerNorms can be patched (as `exprc.patch` does); fuse=True needs timm's VisionTransformer with its standard
    Block, Attention and Mlp.
    """
    check_patchable(model, backend)
    if fuse:
        _check_fusable(model)
    specs = resolve_layers(layers, mode, vit_context(model) if fuse else None)
    where = where_from(layers)
    norms = match_layer_norms(model, list(specs), where)
    placement = _check_plan(model, specs, where) if fuse else {}  # before the model is touched
    replace_norms(model, norms, specs, backend)
    if fuse:
        model._exprc_fusion = _Fusion(placement, backend)
        model.forward_features = FusedForwardFeatures(model)
    return model
