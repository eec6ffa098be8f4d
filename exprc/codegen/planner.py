"""Where each norm's expression runs: in the producing matmul's epilogue, the consuming matmul's prologue, or alone.

- epilogue: the Linear (+ residual) that produces the norm's input also writes y = f(r)*w + b. f runs once per
  element; y is written once and read back once by the consumer.
- prologue: the consuming Linear evaluates f on its A tiles (the affine folded into its weights). y never touches
  memory, but f runs once per N-tile of the consumer: (N / BLOCK_N) times per element.
- standalone: the element-wise kernel (no matmul next to the norm to fuse with).

The prologue wins when the FLOPs it adds (f's cost times the extra N-tiles) cost less time than the bytes it
saves (y written and read back). Time is compared through the machine balance FLOPS_PER_BYTE: H100 SXM runs about
67 TFLOP/s of f32 arithmetic on its CUDA cores against 3.35 TB/s of HBM3, so one byte costs about 20 FLOPs. f's
cost is the cost model's optimized count (`exprc.cost.flops_optimized`, the paper's conventions), which
`exprc.compiler` computes and passes in.

The epilogue is refused where it would dominate the matmul: where issuing f's instructions (or its MUFU
operations) for an output element takes longer than the tensor cores take for that element's 2K FLOPs (H100:
253 G thread-instructions/s and 31.7 G MUFU/s per SM against 7.5 TFLOP/s of bf16 MMA per SM), the producing
matmul runs alone (cuBLAS) and the element-wise kernel after it (`standalone`); not below K = 512, where the
matmul is short and a second launch costs more. f's per-element instructions and MUFU are estimated from its
lowering (`passes/auto_lowering.element_cost`, measured SASS costs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOPS_PER_BYTE = 20  # f32 FLOP/s on CUDA cores / memory bytes/s (H100 SXM)
ISSUE_PER_SM = 4 * 32 * 1.98e9  # thread-instructions per second per SM (H100 SXM: 4 schedulers, 1.98 GHz)
MUFU_PER_SM = 16 * 1.98e9  # special-function operations per second per SM
MMA_FLOPS_PER_SM = {2: 989e12 / 132, 4: 495e12 / 132}  # dense tensor-core FLOP/s per SM: bf16/f16, TF32
MIN_DOMINATED_K = 512  # below, the matmul is short and a second kernel's launch costs more than f: always fuse
# The prologue kernel holds each A tile in registers while f runs on it: an f of more than about a dozen
# instructions, or any MUFU operation, spills there (Triton 3.6, sm_80, 128-wide tiles: checked by exprc bench
# static), and recomputing it per N-tile would not pay anyway. Only such cheap f are placed in a prologue.
PROLOGUE_MAX_INSTRUCTIONS = 12


def prologue_fits(element_cost: tuple[float, float]) -> bool:
    """Whether f, of (instructions, MUFU) per element, may run in the matmul prologue."""
    instructions, mufu = element_cost
    return instructions <= PROLOGUE_MAX_INSTRUCTIONS and mufu == 0
PROLOGUE_BLOCK_N = 128  # the consumer's tile width assumed for the recomputation count
KINDS = ("epilogue", "prologue", "standalone")


@dataclass(frozen=True)
class Plan:
    kind: str  # one of KINDS
    reason: str  # one sentence, for `exprc explain`
    flops: int = 0  # f's cost per element (cost model)


def epilogue_dominates(element_cost: tuple[float, float], producer_k: int, storage_bytes: int = 2) -> str | None:
    """Why the epilogue would take longer than the matmul it follows, or None when it would not. element_cost: f's
    (instructions, MUFU) per element; producer_k: the producing matmul's K."""
    instructions, mufu = element_cost
    if producer_k < MIN_DOMINATED_K:
        return None
    epilogue = max(instructions / ISSUE_PER_SM, mufu / MUFU_PER_SM)
    matmul = 2 * producer_k / MMA_FLOPS_PER_SM[storage_bytes]
    if epilogue <= matmul:
        return None
    return (f"f costs about {instructions:.0f} instructions and {mufu:.0f} MUFU per element, {epilogue * 1e12:.0f} ps "
            f"of issue per element on an H100 SM against {matmul * 1e12:.0f} ps of the K={producer_k} matmul's tensor "
            "cores: in the epilogue it would dominate the matmul, so cuBLAS runs the matmul and the element-wise "
            "kernel the norm")


def plan_layer(flops: int, *, has_producer: bool = True, consumer_n: int | None = None, storage_bytes: int = 2,
               block_n: int = PROLOGUE_BLOCK_N, element_cost: tuple[float, float] | None = None,
               producer_k: int | None = None) -> Plan:
    """Pick epilogue, prologue or standalone for one norm layer.

    flops: f's cost per element after optimization (the cost model's `flops_optimized`). has_producer: the norm's
    input comes straight from a Linear (+ residual) whose epilogue can take f. consumer_n: out_features of the one
    Linear that reads the norm's output, or None when something else reads it. storage_bytes: bytes per
    activation (2 for bf16/f16, 4 for f32). element_cost, producer_k: f's (instructions, MUFU) per element and the
    producing matmul's K, for the rule that refuses an epilogue that would dominate its matmul.
    """
    dominated = epilogue_dominates(element_cost, producer_k, storage_bytes) \
        if has_producer and element_cost is not None and producer_k else None
    if consumer_n is not None:
        n_tiles = max(1, math.ceil(consumer_n / block_n))
        extra = flops * (n_tiles - 1)
        saved = 2 * storage_bytes * FLOPS_PER_BYTE
        cmp = (f"f costs {flops} FLOPs/element; evaluating it in each of the {n_tiles} N-tiles of the "
               f"{consumer_n}-wide consumer adds {extra} FLOPs/element, against {saved} FLOP-equivalents saved by "
               f"not writing and re-reading y ({2 * storage_bytes} bytes at {FLOPS_PER_BYTE} FLOPs/byte)")
        fits = element_cost is None or prologue_fits(element_cost)
        if not fits:
            cmp += (f"; f's {element_cost[0]:.0f} instructions and {element_cost[1]:.0f} MUFU per element are too many "
                    "for the prologue kernel's registers")
        if extra <= saved and fits:
            return Plan("prologue", cmp, flops)
        if dominated:
            return Plan("standalone", cmp + "; " + dominated, flops)
        if has_producer:
            return Plan("epilogue", cmp + "; so the producing matmul's epilogue computes y once", flops)
        return Plan("standalone", cmp + "; no matmul produces the input, so the element-wise kernel runs", flops)
    if dominated:
        return Plan("standalone", dominated, flops)
    if has_producer:
        return Plan("epilogue", f"f costs {flops} FLOPs/element and no Linear consumes y directly: the producing "
                                "matmul's epilogue computes it from the accumulator tile", flops)
    return Plan("standalone", f"f costs {flops} FLOPs/element; no matmul produces the input and no Linear "
                              "consumes the output: the element-wise kernel runs", flops)


@dataclass(frozen=True)
class ViTContext:
    """Where the norms of a timm VisionTransformer sit: `blocks.{i}.norm1` (read by qkv, 3*dim wide; produced by
    the previous block's fc2 except in block 0), `blocks.{i}.norm2` (read by fc1, mlp_hidden wide; produced by
    attn.proj), `norm` (produced by the last fc2, read by pooling and the head). Any other name: standalone.
    Defaults: ViT-B/16 (dim 768, mlp_hidden 4*dim), bf16 activations."""

    dim: int = 768
    mlp_hidden: int | None = None
    storage_bytes: int = 2

    def site(self, name: str) -> tuple[bool, int | None]:
        """(has_producer, consumer_n) of the norm called `name`."""
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit():
            if parts[2] == "norm1":
                return int(parts[1]) > 0, 3 * self.dim
            if parts[2] == "norm2":
                return True, self.mlp_hidden if self.mlp_hidden is not None else 4 * self.dim
        if name == "norm":
            return True, None
        return False, None

    def producer_k(self, name: str) -> int | None:
        """K of the Linear whose epilogue would compute the norm `name`: fc2 (mlp_hidden) before norm1 of blocks
        1.. and before the final norm, attn.proj (dim) before norm2; None without a producer."""
        has_producer, _ = self.site(name)
        if not has_producer:
            return None
        hidden = self.mlp_hidden if self.mlp_hidden is not None else 4 * self.dim
        return self.dim if name.endswith(".norm2") else hidden

    def as_dict(self) -> dict[str, int]:
        return {"dim": self.dim, "mlp_hidden": self.mlp_hidden if self.mlp_hidden is not None else 4 * self.dim,
                "storage_bytes": self.storage_bytes}
