"""The static results (`static-sm90.json`) as README tables, between `<!-- static:begin -->` and `<!-- static:end -->`,
and the instruction budgets they are read against.

A budget is what one element may cost for a kernel to run at the GPU's memory bandwidth: the GPU issues
SMs x 4 schedulers x 32 threads x clock thread-instructions per second and SMs x 16 x clock MUFU operations
(16 special-function lanes per SM), and streams bandwidth / (2 x element size) elements per second (x read, y
written). H100 SXM: 132 SMs at 1.98 GHz, 3.35 TB/s -> 40 instructions and 5 MUFU per bf16 element; H200: 4.8 TB/s
-> 28 and 3.5 (the figures of issue 9).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ExprcError

BEGIN = "<!-- static:begin -->"
END = "<!-- static:end -->"
GPUS = {  # arch -> (name, SMs, boost clock Hz, memory bandwidth B/s)
    90: (("H100", 132, 1.98e9, 3.35e12), ("H200", 132, 1.98e9, 4.8e12)),
    80: (("A100", 108, 1.41e9, 2.039e12),),
}
ELEMENT_SIZE = {"bfloat16": 2, "float16": 2, "float32": 4}
TABLE_STORAGE = "bfloat16"
TABLE_CONFIG = "128x128x64 w8 s3"  # the epilogue table's tile: the large-M default


def budgets(arch: int) -> dict[str, dict[str, dict[str, float]]]:
    """GPU -> storage dtype -> {"instructions", "mufu"} per element at full memory bandwidth."""
    out = {}
    for name, sms, clock, bandwidth in GPUS.get(arch, ()):
        out[name] = {}
        for storage, size in ELEMENT_SIZE.items():
            elements = bandwidth / (2 * size)
            out[name][storage] = {"instructions": round(sms * 4 * 32 * clock / elements, 1),
                                  "mufu": round(sms * 16 * clock / elements, 2)}
    return out


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _find(run: dict, kind: str, storage: str, code: str | None = None, config: str | None = None) -> list[dict]:
    return [k for k in run["kernels"] if k["kind"] == kind and k["storage"] == storage and "error" not in k
            and (code is None or k["code"] == code) and (config is None or k["config"] == config)]


def _code(per_mode: dict, mode: str, storage: str = TABLE_STORAGE) -> str:
    from .static_cases import code_for

    return code_for(per_mode[mode], "f", storage)


def _pe(k: dict) -> str:
    return f"{k['per_element']['instructions']:.1f} / {k['per_element']['mufu']:.2g}"


def baseline_table(run: dict) -> list[str]:
    lines = ["| kernel (bf16 / f32) | instructions per element | MUFU per element | registers |",
             "|---|---:|---:|---:|"]
    for kind, label in (("copy", "plain Triton copy"), ("liger-layernorm", "Liger LayerNorm forward (d=768)"),
                        ("liger-dyt", "Liger DyT forward (d=768, its best autotune config)")):
        cells = []
        for storage in (TABLE_STORAGE, "float32"):
            found = _find(run, kind, storage)
            cells.append(min(found, key=lambda k: k["per_element"]["instructions"]) if found else None)
        if not any(cells):
            continue
        fmt = [" / ".join(f"{c['per_element'][f]:.3g}" if c else "-" for c in cells) for f in ("instructions", "mufu")]
        regs = " / ".join(str(c["registers"]) if c else "-" for c in cells)
        lines.append(f"| {label} | {fmt[0]} | {fmt[1]} | {regs} |")
    return lines


def layer_table(run: dict, budget: dict) -> list[str]:
    modes = list(next(iter(run["layers"].values())).keys()) if run["layers"] else []
    h100, h200 = (budget.get(g, {}).get(TABLE_STORAGE) for g in ("H100", "H200"))
    lines = ["| layer | " + " | ".join(modes) + " |", "|---|" + "---:|" * len(modes)]
    over = {m: [0, 0] for m in modes}
    for name, per_mode in run["layers"].items():
        cells = []
        for mode in modes:
            found = _find(run, "elementwise", TABLE_STORAGE, _code(per_mode, mode))
            if not found:
                cells.append("-")
                continue
            pe = found[0]["per_element"]
            marks = ""
            for i, b in enumerate((h100, h200)):
                if b and (pe["instructions"] > b["instructions"] or pe["mufu"] > b["mufu"]):
                    marks += "*" if i == 0 else "+"
                    over[mode][i] += 1
            chosen = per_mode[mode].get("lowering", {}).get(TABLE_STORAGE)
            cells.append(_pe(found[0]) + (f" {marks}" if marks else "") + (f" ({chosen})" if chosen else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| over H100 / H200 budget | " + " | ".join(f"{a} / {b}" for a, b in over.values()) + " |")
    return lines


def auto_notes(run: dict, budget: dict) -> list[str]:
    """The layers auto keeps over the H100 budget in bf16, with their cost and why."""
    h100 = budget.get("H100", {}).get(TABLE_STORAGE)
    out = []
    for name, per_mode in run["layers"].items():
        entry = per_mode.get("auto")
        found = _find(run, "elementwise", TABLE_STORAGE, _code(per_mode, "auto")) if entry else []
        if not found or not h100:
            continue
        pe = found[0]["per_element"]
        if pe["instructions"] > h100["instructions"] or pe["mufu"] > h100["mufu"]:
            out.append(f"- {name}: {_pe(found[0])} per element, over the H100 budget; {entry.get('why', '')}")
    return out


def epilogue_table(run: dict) -> list[str]:
    tut = _find(run, "tutorial-matmul", TABLE_STORAGE, config=TABLE_CONFIG)
    if not tut:
        return []
    before, body, after = tut[0]["loop"]
    block_k = int(TABLE_CONFIG.split("x")[2].split()[0])
    loop = {k: before + body * (k // block_k) for k in (768, 3072)}
    lines = [f"Triton's tutorial matmul, {TABLE_CONFIG} bf16, one thread: {before} instructions before the K loop, "
             f"{body} per iteration, {after} after it; the K loop totals {loop[768]} (K=768) and {loop[3072]} "
             "(K=3072). exprc's fused epilogue (bias, layer scale, residual, r and y stored, w and b) after the same "
             "loop:", "",
             "| mode | median after the K loop | largest (layer) | largest / K loop at K=768 | at K=3072 | "
             "layers over the K=768 loop | most registers |", "|---|---:|---|---:|---:|---:|---:|"]
    modes = list(next(iter(run["layers"].values())).keys()) if run["layers"] else []
    for mode in modes:
        found = {name: _find(run, "epilogue", TABLE_STORAGE, _code(per_mode, mode), TABLE_CONFIG)
                 for name, per_mode in run["layers"].items()}
        counts = {name: k[0]["loop"][2] for name, k in found.items() if k}
        if not counts:
            continue
        worst = max(counts, key=counts.get)
        median = sorted(counts.values())[len(counts) // 2]
        regs = max(k[0]["registers"] for k in found.values() if k)
        over = sum(c > loop[768] for c in counts.values())
        lines.append(f"| {mode} | {median} | {counts[worst]} ({worst}) | {counts[worst] / loop[768]:.2f} | "
                     f"{counts[worst] / loop[3072]:.2f} | {over} of {len(counts)} | {regs} |")
    return lines


KINDS = ("elementwise", "backward", "epilogue", "prologue", "epilogue-tma")


def _scope(run: dict) -> str:
    if run.get("subset"):
        return "subset"
    if run.get("complete", True):
        return "full sweep"
    planned = run.get("planned")
    return f"partial sweep, {run['summary']['kernels']} of {planned} kernels" if planned else "partial sweep"


def spill_lines(doc: dict) -> list[str]:
    """Per Triton version: kernels, spills, failures and occupancy by kind."""
    out = ["| Triton | kind | kernels | with spills | failed | most registers | fewest programs an SM |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for version, run in sorted(doc["runs"].items(), key=lambda kv: _version_key(kv[0])):
        for kind in KINDS:
            ks = [k for k in run["kernels"] if k["kind"] == kind]
            if not ks:
                continue
            regs = [k["registers"] for k in ks if k.get("registers")]
            ctas = [k["ctas_per_sm"] for k in ks if k.get("ctas_per_sm")]
            out.append(f"| {version} ({_scope(run)}) | {kind} | {len(ks)} | {sum(bool(k.get('spills')) for k in ks)} "
                       f"| {sum('error' in k for k in ks)} | {max(regs, default='-')} | {min(ctas, default='-')} |")
    return out


def markdown(results_dir: str | Path) -> str:
    path = Path(results_dir) / "static-sm90.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return "No static results yet: `exprc bench static` writes `bench/results/static-sm90.json` and this table."
    # the tables: the run with the most kernels (a partial sweep of a newer Triton reads less), newest on ties
    run = doc["runs"][max(doc["runs"], key=lambda v: (len(doc["runs"][v]["kernels"]), _version_key(v)))]
    b = doc["budgets"]
    head = (f"Compiled for sm_90 without a GPU by `exprc bench static` (Triton {run['triton']}, {run['date'][:10]}, "
            f"`{path.name}`); counted in the SASS (`cuobjdump -sass`) of each kernel: one thread's instructions on "
            f"the main path (slow paths called out of line left out) over the elements it computes. Budget at full "
            f"memory bandwidth per bf16 element: H100 {b['H100']['bfloat16']['instructions']:.0f} instructions / "
            f"{b['H100']['bfloat16']['mufu']:.1f} MUFU, H200 {b['H200']['bfloat16']['instructions']:.0f} / "
            f"{b['H200']['bfloat16']['mufu']:.1f} (f32 elements: twice that).")
    parts = [head, "\n".join(baseline_table(run)),
             "**exprc element-wise kernel, bf16, instructions / MUFU per element** (`*` over the H100 budget, `+` "
             "over the H200 budget; auto: the lowering it proved for bf16, in brackets):",
             "\n".join(layer_table(run, b))]
    notes = auto_notes(run, b)
    if notes:
        parts.append("Layers auto leaves over the H100 budget in bf16 (no cheaper lowering proven within the error "
                     "budget):\n" + "\n".join(notes))
    epi = epilogue_table(run)
    if epi:
        parts.append("**Fused matmul epilogue.** " + "\n".join(epi))
    partial = any(not r.get("subset") and not r.get("complete", True) for r in doc["runs"].values())
    parts.append("Spills and occupancy (every kernel, mode, dtype and selectable tile configuration, sm_90"
                 + ("; a partial sweep was stopped before its end" if partial else "") + "):\n\n"
                 + "\n".join(spill_lines(doc)))
    return "\n\n".join(parts)


def update_readme(readme: str | Path, results_dir: str | Path) -> bool:
    """Replace the text between the static markers in `readme`; True when the file changed."""
    path = Path(readme)
    try:
        text = path.read_text()
    except OSError as e:
        raise ExprcError(f"cannot read {path}: {e.strerror}") from None
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ExprcError(f"{path} has no '{BEGIN}' ... '{END}' markers for the static table")
    new = text[: start + len(BEGIN)] + "\n" + markdown(results_dir) + "\n" + text[end:]
    if new == text:
        return False
    path.write_text(new)
    return True
