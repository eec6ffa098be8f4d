"""What `exprc bench static` compiles: one `Job` per distinct kernel, and which layers and modes use it.

The sweep is every kernel family (element-wise forward and backward, matmul epilogue, its sm_90 TMA + persistent
variant "epilogue-tma", and prologue) for every layer, mode and storage dtype, in every tile configuration the
launcher can select for that dtype (f32 inputs also with TF32 dots, which the launcher uses where torch allows TF32;
the prologue only for expressions the planner and the runtime place there, `planner.prologue_fits`); the epilogue
with all its optional inputs (bias, layer scale, residual, r, w, b: the most registers). Layers whose generated code
is the same (clip-only expressions are identical in every mode) share their kernels: jobs are keyed by a digest of
the code.
Beside them: a plain copy, Liger's LayerNorm and DyT forward, and Triton's tutorial matmul in each configuration.

`SUBSET` is the fixed representative part CI compiles (see tests/test_bench_static.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..frontend.layer_set import LayerSet
from ..runtime.kernels.tiles import MATMUL_CONFIGS, MAX_K_SLICE_BYTES, PROLOGUE_CONFIGS, TileConfig
from ..runtime.kernels.tma_tiles import TMA_ARCH, tma_configs

EXPRC_KINDS = ("elementwise", "backward", "epilogue", "epilogue-tma", "prologue")
BASELINE_KINDS = ("copy", "liger-layernorm", "liger-dyt", "tutorial-matmul")
ELEMENT_SIZE = {"float32": 4, "bfloat16": 2, "float16": 2}
STORAGES = ("bfloat16", "float16", "float32")

# CI's representative subset: a clip-only layer, the register-heaviest layer (three nested tanh) and a sigmoid
# layer, element-wise in every mode, bf16 and f32, sm_90; one epilogue configuration; the copy and Liger baselines
SUBSET = {
    "layers": ("blocks.0.norm2", "blocks.2.norm1", "blocks.11.norm2"),
    "storages": ("bfloat16", "float32"),
    "archs": (90,),
    "kinds": ("elementwise", "epilogue", "copy", "liger-layernorm", "liger-dyt"),
    "epilogue": {"layers": ("blocks.2.norm1",), "modes": ("precise",), "configs": (MATMUL_CONFIGS[0],)},
}


@dataclass(frozen=True)
class Job:
    """One kernel to compile. `expr`/`mode` for exprc's kernels; `config` for the matmuls and Liger's DyT (as
    (BLOCK_N, num_warps) there); `precision` the dot's input precision of f32 matmuls."""

    kind: str
    storage: str
    arch: int
    code: str | None = None  # digest of the generated code the kernel runs (exprc's kernels)
    expr: str | None = None
    mode: str | None = None
    clip: tuple[float, float] = (-5.0, 5.0)
    config: TileConfig | tuple[int, int] | None = None
    precision: str | None = None

    @property
    def config_name(self) -> str | None:
        c = self.config
        if isinstance(c, TileConfig):
            return f"{c.block_m}x{c.block_n}x{c.block_k} w{c.num_warps} s{c.num_stages}"
        return f"BLOCK_N={c[0]} w{c[1]}" if c is not None else None

    def key(self) -> tuple:
        return (self.kind, self.storage, self.arch, self.code, self.config_name, self.precision)


def code_digest(text: str) -> str:
    """Short digest of Triton code (`CompiledExpr.code_text`: f, or f and f')."""
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def matmul_choices(configs: tuple[TileConfig, ...], storage: str) -> list[tuple[TileConfig, str]]:
    """(configuration, input precision) pairs the launcher can select for `storage` (tiles.default_tile's rule on
    K-slices; f32 with IEEE and TF32 dots)."""
    es = ELEMENT_SIZE[storage]
    precisions = ("ieee", "tf32") if storage == "float32" else ("ieee",)
    return [(c, p) for c in configs if c.block_k * es <= MAX_K_SLICE_BYTES for p in precisions]


def tma_choices(storage: str) -> list[tuple[TileConfig, str]]:
    """(configuration, input precision) pairs the sm_90 TMA epilogue can run for `storage` (`tma_tiles`: f32 only
    with TF32 dots)."""
    es = ELEMENT_SIZE[storage]
    return [(c, "tf32" if es == 4 else "ieee") for c in tma_configs(es)]


def layer_codes(layer_set: LayerSet, modes: tuple[str, ...]) -> dict[str, dict[str, dict]]:
    """layer -> mode -> {"f": digest of f's code, "grad": digest of f and f', "flops"}; in auto mode, where a
    storage dtype's lowering differs, "f" and "grad" are {storage: digest} and "lowering" {storage: mode}."""
    from ..codegen.planner import prologue_fits
    from ..compiler import compile_expr

    out: dict[str, dict[str, dict]] = {}
    for layer in layer_set:
        for mode in modes:
            c = compile_expr(layer.ir, mode)
            f = {s: code_digest(c.code_text(s)) for s in STORAGES}
            grad = {s: code_digest(c.code_text(s, grad=True)) for s in STORAGES}
            entry = {"f": f if len(set(f.values())) > 1 else f[STORAGES[0]],
                     "grad": grad if len(set(grad.values())) > 1 else grad[STORAGES[0]],
                     "flops": c.cost["flops_code"],
                     "prologue": prologue_fits(c.element_cost("precise"))}
            if c.auto is not None:
                entry["lowering"] = c.auto.modes()
                entry["why"] = c.auto.choices["bfloat16"].reason  # the storage of the README's table
            out.setdefault(layer.name, {})[mode] = entry
    return out


def code_for(entry: dict, key: str, storage: str) -> str:
    """The digest `layer_codes` recorded under `key` ("f" or "grad") for `storage`."""
    value = entry[key]
    return value[storage] if isinstance(value, dict) else value


def sweep(layer_set: LayerSet, modes: tuple[str, ...], storages: tuple[str, ...], archs: tuple[int, ...], *,
          subset: bool = False, only: tuple[str, ...] | None = None) -> tuple[list[Job], dict[str, dict[str, dict]]]:
    """The distinct jobs of the sweep (or of SUBSET) and `layer_codes` of the layers it covers; `only`: of these
    kinds alone."""
    if subset:
        layers = [layer for layer in layer_set if layer.name in SUBSET["layers"]]
        layer_set = LayerSet({la.name: la for la in layers}, layer_set.model, layer_set.clip, layer_set.source)
        storages = tuple(s for s in storages if s in SUBSET["storages"])
        archs = tuple(a for a in archs if a in SUBSET["archs"])
    kinds = SUBSET["kinds"] if subset else EXPRC_KINDS + BASELINE_KINDS
    if only is not None:
        kinds = tuple(k for k in kinds if k in only)
    codes = layer_codes(layer_set, modes)
    jobs: dict[tuple, Job] = {}

    def add(job: Job) -> None:
        jobs.setdefault(job.key(), job)

    for arch in archs:
        for storage in storages:
            for layer in layer_set:
                for mode in modes:
                    entry = codes[layer.name][mode]
                    f, grad = code_for(entry, "f", storage), code_for(entry, "grad", storage)
                    base = dict(storage=storage, arch=arch, expr=layer.expr, mode=mode, clip=tuple(layer_set.clip))
                    if "elementwise" in kinds:
                        add(Job("elementwise", code=f, **base))
                    if "backward" in kinds:
                        add(Job("backward", code=grad, **base))
                    for kind, configs in (("epilogue", MATMUL_CONFIGS), ("prologue", PROLOGUE_CONFIGS)):
                        if kind not in kinds:
                            continue
                        if subset and (layer.name not in SUBSET[kind]["layers"] or mode not in SUBSET[kind]["modes"]
                                       or storage != "bfloat16"):
                            continue
                        if kind == "prologue" and not entry["prologue"]:  # never placed there (planner)
                            continue
                        for config, precision in matmul_choices(configs, storage):
                            if subset and config not in SUBSET[kind]["configs"]:
                                continue
                            add(Job(kind, code=f, config=config, precision=precision, **base))
                    if "epilogue-tma" in kinds and arch // 10 == TMA_ARCH:  # sm_90 only, as the launcher
                        for config, precision in tma_choices(storage):
                            add(Job("epilogue-tma", code=f, config=config, precision=precision, **base))
            if "copy" in kinds:
                add(Job("copy", storage, arch))
            if "liger-layernorm" in kinds:
                add(Job("liger-layernorm", storage, arch))
            if "liger-dyt" in kinds:
                from .static_baselines import LIGER_DYT_CONFIGS

                for config in LIGER_DYT_CONFIGS[:1] if subset else LIGER_DYT_CONFIGS:
                    add(Job("liger-dyt", storage, arch, config=config))
            if "tutorial-matmul" in kinds:  # its dot's default precision (TF32 for f32 inputs)
                for config in dict.fromkeys(c for c, _ in matmul_choices(MATMUL_CONFIGS, storage)):
                    add(Job("tutorial-matmul", storage, arch, config=config))
    order = {kind: i for i, kind in enumerate(("elementwise", "copy", "liger-layernorm", "liger-dyt", "backward",
                                               "epilogue", "epilogue-tma", "tutorial-matmul", "prologue"))}
    return sorted(jobs.values(), key=lambda j: order[j.kind]), codes  # quick kinds first
