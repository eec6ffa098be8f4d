"""Pareto-front CSVs -> `LayerSet`, one point chosen per layer (`exprc.selection`).

- The GP-LayerNorm code's CSV, `Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression`: one row per
  Pareto point, several per layer and seed (`Complexity_Rank` and `FLOPs` may be absent).
- Kozax's `pareto_front.csv`, `Complexity,Fitness,Equation 0` (`Complexity` may be absent), one layer per file,
  written by `np.savetxt` without quoting, so an equation with commas spans several fields; or a directory of
  them, one per layer (`DIR/<layer>.csv` or `DIR/<layer>/pareto_front.csv`), read in natural name order.

A point's complexity, for `simplest` and `knee`, is what the file gives: the `FLOPs` column of the GP-LayerNorm
CSV, the `Complexity` column of a Kozax front; without that column, the node count of the parsed expression.
Its error is `Val_MSE` (`Train_MSE` for `train`), or a Kozax front's one `Fitness`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExprcError
from ..ir import Node, count_nodes
from ..selection import Point, choose
from .functions import DEFAULT_CLIP
from .layer_checks import MAX_LAYERS, check_name, decode, parse_layer, read_bytes
from .layer_set import Layer, LayerSet

PAPER_CSV = "gp-layernorm-csv"
PAPER_COLUMNS = ("Layer", "Run_Seed", "Train_MSE", "Val_MSE", "Expression")  # required; Complexity_Rank, FLOPs too
KOZAX_CSV = "kozax-pareto-csv"
KOZAX_FILE = "pareto_front.csv"


def csv_kind(first_line: str) -> str | None:
    """PAPER_CSV or KOZAX_CSV by the header line, or None."""
    columns = [c.strip() for c in next(csv.reader([first_line]), [])]
    if "Layer" in columns and "Expression" in columns:
        return PAPER_CSV
    if "Fitness" in columns and any(c.startswith("Equation") for c in columns):
        return KOZAX_CSV
    return None


@dataclass
class Candidate:
    """One row: a point of a layer's front."""

    layer: str
    expr: str
    ir: Node
    train: float  # nan when unknown
    val: float
    complexity: float
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-safe, becomes the chosen layer's metadata


def paper_candidates(text: str, where: str, clip_bounds: tuple[float, float], seed: int | None) -> list[Candidate]:
    header, rows = _csv_rows(text, where)
    missing = [c for c in PAPER_COLUMNS if c not in header]
    if missing:
        raise ExprcError(f"missing CSV column(s) {', '.join(missing)}; found {', '.join(header)}", where=where)
    col = {c: header.index(c) for c in header}
    cands, seeds = [], set()
    for line, fields in rows:
        at = f"{where}, line {line}"
        fields = _join_tail(header, fields, at) if header[-1] == "Expression" else fields
        if len(fields) != len(header):
            raise ExprcError(f"expected {len(header)} fields, found {len(fields)}", where=at)
        run_seed = _number(fields[col["Run_Seed"]], "Run_Seed", at)
        if not run_seed.is_integer():
            raise ExprcError(f"Run_Seed: expected an integer, found {fields[col['Run_Seed']]!r}", where=at)
        seeds.add(int(run_seed))
        if seed is not None and int(run_seed) != seed:
            continue
        name = fields[col["Layer"]]
        check_name(name, at)
        expr = fields[col["Expression"]]
        ir = parse_layer(expr, clip_bounds, f"{at}: layer {name!r}")
        train = _number(fields[col["Train_MSE"]], "Train_MSE", at)
        val = _number(fields[col["Val_MSE"]], "Val_MSE", at)
        meta: dict[str, Any] = {"seed": int(run_seed), "train_fitness": _finite_or_none(train),
                                "val_fitness": _finite_or_none(val), "line": line}
        if "Complexity_Rank" in col:
            meta["complexity_rank"] = int(_number(fields[col["Complexity_Rank"]], "Complexity_Rank", at))
        complexity = float(count_nodes(ir))
        if "FLOPs" in col:
            complexity = _number(fields[col["FLOPs"]], "FLOPs", at)
            meta["kozax_flops"] = _finite_or_none(complexity)
        cands.append(Candidate(name, expr, ir, train, val, complexity, meta))
    if not cands:
        raise ExprcError(f"no rows with Run_Seed {seed}; seeds in the file: {', '.join(map(str, sorted(seeds)))}",
                         where=where)
    return cands


def kozax_layer_name(path: Path) -> str:
    """A single front's layer: its directory's name for `pareto_front.csv`, else the file name without `.csv`."""
    if path.name == KOZAX_FILE:
        return path.resolve().parent.name
    return path.name[:-4] if path.name.lower().endswith(".csv") else path.name


def kozax_candidates(text: str, where: str, name: str, clip_bounds: tuple[float, float]) -> list[Candidate]:
    header, rows = _csv_rows(text, where)
    equations = [c for c in header if c.startswith("Equation")]
    if len(equations) != 1 or header[-1] != equations[0] or "Fitness" not in header:
        raise ExprcError(f"expected Kozax columns [Complexity,]Fitness,Equation 0 (one tree per candidate); "
                         f"found {','.join(header)}", where=where)
    col = {c: header.index(c) for c in header}
    cands = []
    for line, fields in rows:
        at = f"{where}, line {line}"
        fields = _join_tail(header, fields, at)
        expr = fields[-1]
        ir = parse_layer(expr, clip_bounds, f"{at}: layer {name!r}")
        fitness = _number(fields[col["Fitness"]], "Fitness", at)
        meta: dict[str, Any] = {"train_fitness": _finite_or_none(fitness), "line": line}
        complexity = float(count_nodes(ir))
        if "Complexity" in col:
            complexity = _number(fields[col["Complexity"]], "Complexity", at)
            meta["complexity"] = _finite_or_none(complexity)
        cands.append(Candidate(name, expr, ir, fitness, fitness, complexity, meta))
    return cands


def read_kozax_dir(path: Path, select: str, bounds: tuple[float, float] | None) -> LayerSet:
    """A directory of Kozax fronts, one layer each; the digest covers every file's name and bytes."""
    files = [(p.stem, p) for p in path.glob("*.csv") if p.is_file()]
    files += [(p.parent.name, p) for p in path.glob(f"*/{KOZAX_FILE}") if p.is_file()]
    if not files:
        raise ExprcError(f"no Kozax fronts here: expected <layer>.csv or <layer>/{KOZAX_FILE}", where=str(path))
    if len(files) > MAX_LAYERS:
        raise ExprcError(f"{len(files)} layer files; the limit is {MAX_LAYERS}", where=str(path))
    files.sort(key=lambda nf: _natural_key(nf[0]))
    digest = hashlib.sha256()
    cands: list[Candidate] = []
    seen: dict[str, Path] = {}
    for name, file in files:
        where = str(file)
        check_name(name, where)
        if name in seen:
            raise ExprcError(f"duplicate layer {name!r}: also in {seen[name]}", where=where)
        seen[name] = file
        data = read_bytes(file)
        text = decode(data, where)
        if csv_kind(text.lstrip().split("\n", 1)[0].strip()) != KOZAX_CSV:
            raise ExprcError("expected a Kozax pareto_front.csv (Complexity,Fitness,Equation 0)", where=where)
        rel = file.relative_to(path).as_posix().encode()
        digest.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
        for c in kozax_candidates(text, where, name, bounds or DEFAULT_CLIP):
            c.meta["file"] = file.relative_to(path).as_posix()
            cands.append(c)
    meta = {"format": KOZAX_CSV, "select": select, "seed": None, "rows": len(cands)}
    return pick(cands, select, bounds, str(path), digest.hexdigest(), meta)


def pick(cands: list[Candidate], select: str, bounds: tuple[float, float] | None, source: str, digest: str,
         meta: dict[str, Any]) -> LayerSet:
    """One candidate per layer, by `select`; layers in the order they first appear, ties to the earlier row."""
    by_layer: dict[str, list[Candidate]] = {}
    for c in cands:
        by_layer.setdefault(c.layer, []).append(c)
    if len(by_layer) > MAX_LAYERS:
        raise ExprcError(f"{len(by_layer)} layers; the limit is {MAX_LAYERS}", where=source)
    layers = {}
    for name, group in by_layer.items():
        best = group[choose([Point(c.complexity, c.val, c.train) for c in group], select)]
        layers[name] = Layer(name, best.expr, best.ir, {**best.meta, "candidates": len(group)})
    return LayerSet(layers, None, bounds or DEFAULT_CLIP, source, digest, meta)


def _csv_rows(text: str, where: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, fields)]) with blank lines skipped."""
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for row in reader:
            if any(f.strip() for f in row):
                rows.append((line, [f.strip() for f in row]))
            line = reader.line_num + 1
    except csv.Error as e:
        raise ExprcError(f"invalid CSV: {e}", where=f"{where}, line {line}") from None
    if not rows:
        raise ExprcError("the CSV has no header and no rows", where=where)
    header = rows.pop(0)[1]
    if not rows:
        raise ExprcError("the CSV has a header but no rows", where=where)
    return header, rows


def _join_tail(header: list[str], fields: list[str], where: str) -> list[str]:
    """An unquoted expression with commas in the last column spans several fields: join them back."""
    if len(fields) > len(header):
        fields = fields[:len(header) - 1] + [",".join(fields[len(header) - 1:])]
    if len(fields) < len(header):
        raise ExprcError(f"expected {len(header)} fields ({','.join(header)}), found {len(fields)}", where=where)
    return fields


def _number(text: str, column: str, where: str) -> float:
    cleaned = text.strip().strip("[]").split()  # Kozax writes multi-objective fitness as "[0.1 0.2]"
    try:
        return float(cleaned[0])
    except (ValueError, IndexError):
        raise ExprcError(f"{column}: expected a number, found {text[:40]!r}", where=where) from None


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _natural_key(name: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]
