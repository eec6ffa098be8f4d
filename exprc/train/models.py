"""The models of a re-alignment run: the student (LayerNorm, GP or DyT norms), the frozen LayerNorm teacher of -D,
and the parameter groups (backbone, affine, alpha) with their learning rates.

The student starts as the original model (a timm model by name, from a local checkpoint or random weights, as
`exprc extract` loads it); its LayerNorms are replaced keeping their affine weight and bias: by the ExprNorms of a
layer file through `patch_timm` (fused by default, trained through the generated backward kernels), or by DyT
modules with a learnable alpha. The teacher is a copy of the original model taken before any replacement.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..benchmarks.baselines import DynamicTanh
from ..errors import ExprcError
from .config import RealignConfig


class DyT(DynamicTanh):
    """DyT, tanh(alpha*x) * weight + bias, with a learnable scalar alpha and LayerNorm's parameter names (so a
    LayerNorm's state dict loads into it). On CUDA tensors it runs Liger's fused kernel (`LigerDyTFunction`) when
    liger-kernel is installed, else the eager code of the DyT repository."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = _liger_dyt() if x.is_cuda else None
        if fused is None:
            return super().forward(x)
        return fused.apply(x, self.alpha, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, alpha_init={self.alpha_init_value}"


def _liger_dyt():
    try:
        from liger_kernel.ops.dyt import LigerDyTFunction
    except ImportError:
        return None
    return LigerDyTFunction


def norm_types() -> tuple[type, ...]:
    """The module types whose weight, bias (and alpha) form the affine (and alpha) groups."""
    from ..runtime.expr_norm import ExprNorm

    return (nn.LayerNorm, ExprNorm, DyT)


@dataclass
class Models:
    student: nn.Module
    teacher: nn.Module | None  # the original LayerNorm model, frozen, in eval mode (-D; also the reference)
    layers_digest: str | None  # sha256 of the student's expressions by layer (GP), what a checkpoint is checked by
    weights_digest: str  # what the weights came from: sha256 of the checkpoint file, "random" or "timm-pretrained"


def load_original(config: RealignConfig) -> nn.Module:
    """The timm model with its LayerNorms: built as `exprc extract` builds it (same flags, same errors), then,
    with --checkpoint, every tensor of the file loaded strictly, the classifier included. (timm's own pretrained
    path drops the classifier of a file whose class count differs from the architecture's default: a digits
    model's 10-class head would come back random, and so would the -D teacher's.)"""
    from ..commands.extract import model_arg_error
    from ..gp.extract import load_model

    kwargs = dict(config.model_args)
    if config.drop_path and "drop_path_rate" not in kwargs:
        kwargs["drop_path_rate"] = config.drop_path
    try:
        model = load_model(config.model, None, config.random_init or config.checkpoint is not None, kwargs)
    except ExprcError:
        bad = model_arg_error(config.model, [f"{k}={json.dumps(v)}" for k, v in kwargs.items()], kwargs)
        if bad is not None:
            raise bad from None
        raise
    if config.checkpoint is not None:
        load_weights(model, config.model, config.checkpoint)
    return model


def load_weights(model: nn.Module, name: str, path: str) -> None:
    """Every tensor of the weights file `path` into `model` (strict), through the model family's checkpoint
    filter (timm's: e.g. a ViT's position embedding resampled to the image size)."""
    import sys

    from timm.models import load_checkpoint

    if not Path(path).is_file():
        raise ExprcError(f"checkpoint file not found: {path}")
    filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    try:
        load_checkpoint(model, path, strict=True, filter_fn=filter_fn)
    except Exception as e:  # torch, safetensors and timm raise many types for a file that does not fit
        first = str(e).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3]) if first else type(e).__name__
        raise ExprcError(f"cannot load the weights of {path} into {name} ({type(e).__name__}: {detail}); "
                         "is it this model, with these --model-arg values (num_classes, img_size, ...)?") from None
    model.eval()


def replace_with_dyt(model: nn.Module, alpha: float) -> nn.Module:
    """Every nn.LayerNorm of `model` replaced by a DyT with its affine copied and alpha = `alpha`; in place."""
    norms = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)]
    if not norms:
        raise ExprcError(f"model {type(model).__name__} has no nn.LayerNorm to replace by DyT")
    for name, ln in norms:
        if len(ln.normalized_shape) != 1 or not ln.elementwise_affine:
            raise ExprcError(f"DyT replaces LayerNorms over one dimension with an affine; {name} is "
                             f"{tuple(ln.normalized_shape)}, elementwise_affine={ln.elementwise_affine}")
        dyt = DyT(ln.normalized_shape[0], alpha).to(device=ln.weight.device, dtype=ln.weight.dtype)
        with torch.no_grad():
            dyt.weight.copy_(ln.weight)
            if ln.bias is not None:
                dyt.bias.copy_(ln.bias)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, dyt.train(ln.training))
    return model


def _layer_source(config: RealignConfig):
    """What patch_timm is given: a kernels directory as it is, a layer file read with --select."""
    from ..frontend.layer_files import read_layers

    path = Path(config.layers)
    if path.is_dir():
        return str(path)
    if not path.is_file():
        raise ExprcError("layer file not found", where=str(path))
    return read_layers(path, select=config.select, seed=config.layers_seed)


def expressions_digest(model: nn.Module) -> str:
    """sha256 over the (layer name, expression text) of every ExprNorm of `model`."""
    from ..runtime.expr_norm import ExprNorm

    exprs = {name: m.expr_text for name, m in model.named_modules() if isinstance(m, ExprNorm)}
    return hashlib.sha256(json.dumps(exprs, sort_keys=True).encode()).hexdigest()


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_models(config: RealignConfig, device: torch.device, keep_teacher: bool) -> Models:
    """Student and (with `keep_teacher`) teacher on `device`; the student in training mode."""
    original = load_original(config)
    teacher = copy.deepcopy(original).requires_grad_(False).eval() if keep_teacher else None
    student = original
    digest = None
    if config.norm == "gp":
        from ..runtime.patch_timm import patch_timm

        try:
            patch_timm(student, _layer_source(config), fuse=config.fuse, mode=config.mode, backend=config.backend)
        except ExprcError as e:
            if config.fuse and "fuse=False" in e.message:
                raise ExprcError(e.message.replace("patch it with fuse=False", "run with --no-fuse"),
                                 where=e.where) from None
            raise
        digest = expressions_digest(student)
    elif config.norm == "dyt":
        replace_with_dyt(student, config.dyt_alpha)
    weights = file_digest(config.checkpoint) if config.checkpoint else \
        ("random" if config.random_init else "timm-pretrained")
    student = student.to(device).train()
    return Models(student, teacher.to(device) if teacher is not None else None, digest, weights)


def parameter_groups(model: nn.Module, config: RealignConfig, norms: tuple[type, ...] = ()) -> list[dict]:
    """AdamW's groups: `backbone` (everything but the norms), `affine` (the norms' weight and bias), `alpha`
    (DyT's); a group whose rate is None (the backbone of -A) is frozen (requires_grad False) and left out.
    `norms`: module types counted as norms besides LayerNorm, ExprNorm and DyT."""
    owners = {name for name, m in model.named_modules() if isinstance(m, (*norm_types(), *norms))}
    rates = {"backbone": config.lr_backbone, "affine": config.lr_affine, "alpha": config.lr_alpha}
    params: dict[str, list[nn.Parameter]] = {k: [] for k in rates}
    for name, p in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        kind = ("alpha" if leaf == "alpha" else "affine") if owner in owners else "backbone"
        if rates[kind] is None:
            p.requires_grad_(False)
        else:
            params[kind].append(p)
    groups = [{"name": k, "params": v, "lr": rates[k], "weight_decay": config.weight_decay}
              for k, v in params.items() if v]
    if not any(g["name"] == "affine" for g in groups):
        raise ExprcError("the model has no norm parameters to re-align (no LayerNorm, ExprNorm or DyT affine)")
    return groups


def trainable_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]
