"""What one `exprc bench` run measures (`BenchConfig`) and what its benches share (`BenchContext`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..frontend.layer_set import Layer, LayerSet
from .exprc_runtime import ExprcPackages
from .timing import FULL, QUICK, TimerSettings

BENCHES = ("kernels", "epilogue", "vit", "train")
ALL_MODES = ("auto", "precise", "fast", "horner")


@dataclass(frozen=True)
class BenchConfig:
    device: str  # "cuda" | "cpu"
    quick: bool  # --quick: tiny shapes and a couple of implementations per bench
    modes: tuple[str, ...] = ALL_MODES
    dtypes: tuple[str, ...] | None = None  # None: each bench's default
    batches: tuple[int, ...] | None = None  # ViT batch sizes; None: the bench's default
    only: str | None = None  # regex over "bench/impl/layer/shape/dtype": run only matching cases
    exclude: str | None = None  # regex over the same: leave matching cases out
    layers_path: str | None = None  # None: the paper's 25 layers
    budget_s: float | None = None  # after this many seconds, the remaining cases are recorded as not run

    @property
    def small(self) -> bool:
        """Tiny shapes: --quick, and every CPU run (full-size shapes would take hours on a CPU)."""
        return self.quick or self.device != "cuda"

    @property
    def timer(self) -> TimerSettings:
        return QUICK if self.quick else FULL

    @property
    def run_modes(self) -> tuple[str, ...]:
        return self.modes[:1] if self.quick else self.modes

    def selects(self, key: str) -> bool:
        if self.only and not re.search(self.only, key):
            return False
        return not (self.exclude and re.search(self.exclude, key))


@dataclass
class BenchContext:
    cfg: BenchConfig
    layer_set: LayerSet
    _packages: dict[tuple[str, ...], ExprcPackages] = field(default_factory=dict)

    def packages(self, layers: list[Layer]) -> ExprcPackages:
        """Compiled packages (one per mode, written on first use) holding exactly `layers`."""
        key = tuple(layer.name for layer in layers)
        if key not in self._packages:
            subset = LayerSet({layer.name: layer for layer in layers}, model=self.layer_set.model,
                              clip=self.layer_set.clip, source=self.layer_set.source)
            self._packages[key] = ExprcPackages(subset)
        return self._packages[key]

    def close(self) -> None:
        for p in self._packages.values():
            p.close()
