"""What a compiled kernel became, read from its SASS (`cuobjdump -sass` on the cubin): instructions, special-function
(MUFU) operations, out-of-line slow paths and the loop structure.

    /*0130*/                   MUFU.RCP R0, R0 ;
    /*00d0*/              @!P0 BRA 0x110 ;

Counts are static: each instruction of the kernel's code once. The kernels exprc generates are straight-line code
(the element-wise kernels) or one loop (the K loop of the matmuls), so static counts are what a thread issues:

- `main`: the kernel's own code, from its entry to the subroutines placed after it, without NOPs and without the
  closing self-branch (`BRA` to itself after the last EXIT). A branch inside it (a predicated skip over a slow
  path's call) is counted on both sides: an upper bound on one thread's instructions.
- `cold`: the subroutines reached by `CALL` (64-bit integer division, IEEE division's slow path): code that runs
  only for rare inputs. Each `CALL` site is counted in `calls`.
- the loop: the backward branches of the main code delimit it; `before_loop`, `loop_body` and `after_loop` split
  the main code there (a matmul's set-up, its K loop and its epilogue).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);")
_TARGET = re.compile(r"(0x[0-9a-f]+)\s*$")


@dataclass(frozen=True)
class Instr:
    addr: int
    opcode: str  # with its modifiers, e.g. "MUFU.RCP", "LDG.E.128"
    operands: str
    predicate: str = ""

    @property
    def name(self) -> str:
        """The opcode without modifiers ("MUFU", "LDG")."""
        return self.opcode.split(".", 1)[0]

    def target(self) -> int | None:
        """The address a BRA or CALL jumps to."""
        if self.name not in ("BRA", "CALL"):
            return None
        m = _TARGET.search(self.operands)
        return int(m.group(1), 16) if m else None


def parse_sass(text: str) -> list[Instr]:
    """The instructions of the (first) function in `cuobjdump -sass` output, in address order."""
    out: list[Instr] = []
    for m in _LINE.finditer(text):
        addr = int(m.group(1), 16)
        if out and addr <= out[-1].addr:  # a second function starts: one kernel per cubin here
            break
        out.append(Instr(addr, m.group(3), m.group(4).strip(), (m.group(2) or "").strip()))
    return out


@dataclass(frozen=True)
class SassProfile:
    main: int  # instructions of the kernel's own code (see the module docstring)
    mufu: int  # MUFU instructions in `main`
    mufu_ops: dict[str, int] = field(default_factory=dict)  # "RCP", "EX2", "TANH", ... -> count in `main`
    calls: int = 0  # CALL sites in `main`
    cold: int = 0  # instructions of the called subroutines
    before_loop: int = 0  # `main` split at its outermost loop (all three 0 when it has none)
    loop_body: int = 0
    after_loop: int = 0
    loop_mufu: tuple[int, int, int] = (0, 0, 0)  # MUFU before, in and after the loop
    opcodes: dict[str, int] = field(default_factory=dict)  # opcode name -> count in `main`

    @property
    def has_loop(self) -> bool:
        return self.loop_body > 0


def profile(instrs: list[Instr]) -> SassProfile:
    """Counts of the instructions `parse_sass` read (see the module docstring)."""
    code = [i for i in instrs if i.name != "NOP"]
    code = [i for i in code if not (i.name == "BRA" and i.target() == i.addr)]  # the closing self-branch
    entries = [t for i in code if i.name == "CALL" and (t := i.target()) is not None]
    end = min(entries) if entries else None
    main = [i for i in code if end is None or i.addr < end]
    cold = len(code) - len(main)
    back = [(t, i.addr) for i in main if i.name == "BRA" and (t := i.target()) is not None and t <= i.addr]
    split, mufu_split = (0, 0, 0), (0, 0, 0)
    if back:
        start, stop = min(t for t, _ in back), max(a for _, a in back)

        def part(instrs: list[Instr]) -> tuple[int, int, int]:
            return (sum(i.addr < start for i in instrs), sum(start <= i.addr <= stop for i in instrs),
                    sum(i.addr > stop for i in instrs))

        split, mufu_split = part(main), part([i for i in main if i.name == "MUFU"])
    mufu = Counter(i.opcode.split(".")[1] if "." in i.opcode else "" for i in main if i.name == "MUFU")
    return SassProfile(len(main), sum(mufu.values()), dict(sorted(mufu.items())),
                       sum(i.name == "CALL" for i in main), cold, *split, mufu_split,
                       dict(Counter(i.name for i in main).most_common()))
