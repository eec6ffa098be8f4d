"""`auto` mode: per expression and storage dtype, the cheapest lowering that `error_bounds.prove` shows within the
dtype's error budget; `precise` where none can be proven (the bound wins over speed).

Cost: the per-element SASS cost of each op's lowering, measured by `exprc bench static` (Triton 3.8, sm_90, bf16,
the element-wise kernel of tanh(x), sigmoid(x), exp(x) minus that of x), as instructions + 8 x (MUFU + conversion
instructions): at an H100's bandwidth an element affords 40 instructions or 5 MUFU, and F2I/FRND issue at MUFU's
rate. Division: IEEE `div_rn` (MUFU.RCP and a called slow path) against the software reciprocal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Node, Op
from .error_bounds import LOWERING_ERRORS, Proof, prove

MODES = ("precise", "fast", "horner")
STORAGES = ("float32", "bfloat16", "float16")
MUFU_WEIGHT = 8  # instructions per MUFU or conversion at an H100's per-element budget (40 / 5)
# mode -> op -> (instructions, MUFU + conversions) per element
LOWERING_COST: dict[str, dict[Op, tuple[float, float]]] = {
    "precise": {Op.TANH: (21.3, 2), Op.SIGMOID: (23.0, 2), Op.EXP: (9.1, 1), Op.DIV: (8.0, 1)},
    "fast": {Op.TANH: (1.0, 1), Op.SIGMOID: (3.0, 1), Op.EXP: (5.0, 1), Op.DIV: (8.0, 1)},
    "horner": {Op.TANH: (30.2, 2), Op.SIGMOID: (29.1, 2), Op.EXP: (18.0, 2), Op.DIV: (9.0, 0)},
}
CHOSEN_BY_OPS = frozenset(LOWERING_COST["precise"])  # the ops whose lowering differs between modes


def element_cost(root: Node, mode: str) -> tuple[float, float]:
    """(instructions, MUFU + conversions) per element of f in `mode`, estimated: each lowered op's measured cost,
    one instruction for every other arithmetic node (clip: two)."""
    table = LOWERING_COST[mode]
    instructions = mufu = 0.0
    for n in root.toposort():
        if n.op in table:
            instructions, mufu = instructions + table[n.op][0], mufu + table[n.op][1]
        elif n.op not in (Op.CONST, Op.INPUT, Op.NEG):
            instructions += 2 if n.op is Op.CLIP else 1
    return instructions, mufu


def cost(root: Node, mode: str) -> float:
    """Estimated per-element cost of the lowerings `mode` gives the ops of `root` (optimized IR)."""
    table = LOWERING_COST[mode]
    return sum(table[n.op][0] + MUFU_WEIGHT * table[n.op][1] for n in root.toposort() if n.op in table)


@dataclass(frozen=True)
class StorageChoice:
    storage: str
    mode: str
    reason: str
    proofs: tuple[Proof, ...] = ()  # the candidates tried, cheapest first


@dataclass(frozen=True)
class AutoChoice:
    choices: dict[str, StorageChoice] = field(default_factory=dict)  # storage dtype -> choice

    def mode(self, storage: str) -> str:
        return self.choices[storage].mode

    def modes(self) -> dict[str, str]:
        return {s: c.mode for s, c in self.choices.items()}


def choose(root: Node) -> AutoChoice:
    """The lowering of each storage dtype for `root`, the IR after the optimization passes (before lowering)."""
    if not any(n.op in CHOSEN_BY_OPS for n in root.toposort()):
        why = "no tanh, sigmoid, exp or division: every mode compiles the same code"
        return AutoChoice({s: StorageChoice(s, "precise", why) for s in STORAGES})
    ranked = sorted(MODES, key=lambda m: (cost(root, m), m != "precise"))
    choices = {}
    for storage in STORAGES:
        proofs: list[Proof] = []
        chosen = None
        for mode in ranked:
            if mode == "precise":
                break
            proof = prove(root, mode, storage)
            proofs.append(proof)
            if proof.ok:
                chosen = mode
                break
        if chosen is None:
            chosen = "precise"
            tried = "; ".join(p.text() for p in proofs) or "precise is the cheapest"
            reason = f"no cheaper lowering proven: {tried}; keeps precise"
        else:
            reason = f"the cheapest proven lowering (cost {cost(root, chosen):.0f} against precise's " \
                     f"{cost(root, 'precise'):.0f}): {proofs[-1].text()}"
        choices[storage] = StorageChoice(storage, chosen, reason, tuple(proofs))
    return AutoChoice(choices)


def describe_errors() -> str:
    """The stated error of every lowering, one line each (for `exprc explain`)."""
    return "\n".join(f"  {mode} {op.name.lower()}: {err.text()}" for mode, table in LOWERING_ERRORS.items()
                     for op, err in table.items())
