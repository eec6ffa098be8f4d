"""What a layer file holds once read: one expression per normalization layer, plus where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir import Node
from .functions import DEFAULT_CLIP


@dataclass(frozen=True)
class Layer:
    name: str  # the module path in the model, e.g. "blocks.0.norm1"
    expr: str  # the expression text as written in the file
    ir: Node  # parsed, unoptimized IR
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # val_fitness, seed, ... (JSON-safe)


@dataclass(frozen=True)
class LayerSet:
    layers: dict[str, Layer]  # in file order
    model: str | None = None
    clip: tuple[float, float] = DEFAULT_CLIP
    source: str | None = None  # path it was read from
    sha256: str | None = None  # hash of the file's bytes
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers.values())
