"""The mappings file: per normalization layer, sampled (x, y_pre) pairs, plus where they came from.

Stored as one `.npz`: arrays `{layer}_x` and `{layer}_y` (float32, the layout of the paper's
`extract_mappings.py`, so either tool reads the other's file) and `__meta__`, a JSON string with the model name,
the layer order, each layer's eps and normalized shape, and how the points were drawn. A file without
`__meta__` (the paper's own) is read with its layers in sorted order and no eps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..atomic_write import atomic_write
from ..errors import ExprcError

FORMAT = "exprc.mappings/1"
META_KEY = "__meta__"


@dataclass
class LayerMapping:
    """What one normalization layer does to sampled elements: y_pre = (x - mean) / sqrt(var + eps)."""

    x: np.ndarray  # float32 (n,), the layer's input elements
    y: np.ndarray  # float32 (n,), the pre-affine output for those elements
    eps: float | None = None
    normalized_shape: tuple[int, ...] | None = None


@dataclass
class Mappings:
    layers: dict[str, LayerMapping]  # in model order
    model: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-safe: checkpoint, images, points, seed, ...

    def names(self) -> list[str]:
        return list(self.layers)


def save_mappings(path: str | os.PathLike, mappings: Mappings) -> None:
    """Write `mappings` to `path` atomically (a temporary file in the same directory, then a rename), with the
    mode a new file gets under the umask."""
    arrays: dict[str, np.ndarray] = {}
    layer_meta = {}
    for name, m in mappings.layers.items():
        arrays[f"{name}_x"] = np.asarray(m.x, dtype=np.float32)
        arrays[f"{name}_y"] = np.asarray(m.y, dtype=np.float32)
        layer_meta[name] = {"eps": m.eps, "normalized_shape": list(m.normalized_shape or ()), "points": len(m.x)}
    meta = {"format": FORMAT, "model": mappings.model, "layers": layer_meta, **mappings.meta}
    arrays[META_KEY] = np.array(json.dumps(meta))
    with atomic_write(path, binary=True) as f:
        np.savez_compressed(f, **arrays)


def load_mappings(path: str | os.PathLike) -> Mappings:
    """Read a mappings file written by `save_mappings` or by the paper's extraction script."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ExprcError(f"cannot read mappings file: {e}", where=str(path)) from None
    with data:
        files = set(data.files)
        if META_KEY in files:
            meta = json.loads(str(data[META_KEY]))
            order = list(meta.get("layers", {}))
        else:
            meta = {}
            order = sorted({k.rsplit("_", 1)[0] for k in files if k.endswith(("_x", "_y"))})
        layers = {}
        for name in order:
            if f"{name}_x" not in files or f"{name}_y" not in files:
                raise ExprcError(f"layer {name!r} lacks its _x or _y array", where=str(path))
            x, y = np.asarray(data[f"{name}_x"], np.float32), np.asarray(data[f"{name}_y"], np.float32)
            if x.shape != y.shape or x.ndim != 1:
                raise ExprcError(f"layer {name!r}: x and y must be 1-D of one length, found {x.shape} and {y.shape}",
                                 where=str(path))
            info = meta.get("layers", {}).get(name, {})
            shape = tuple(info["normalized_shape"]) if info.get("normalized_shape") else None
            layers[name] = LayerMapping(x, y, info.get("eps"), shape)
    if not layers:
        raise ExprcError("no layers found (expected arrays named LAYER_x and LAYER_y)", where=str(path))
    extra = {k: v for k, v in meta.items() if k not in ("format", "model", "layers")}
    return Mappings(layers, meta.get("model"), extra)
