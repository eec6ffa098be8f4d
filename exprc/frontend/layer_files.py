"""Layer files -> `LayerSet`: one expression per normalization layer.

Three formats, told apart by content (the extension is not trusted):
- `layers.json`, format "exprc.layers/1": {"format", "model", "clip", "layers": {name: expr | {"expr", ...meta}}},
  or a bare {name: expr} object; a Python mapping of the same shape is accepted directly;
- the GP-LayerNorm code's Pareto CSV, `Layer,Run_Seed,Complexity_Rank,FLOPs,Train_MSE,Val_MSE,Expression`, one row
  per Pareto point (several per layer and seed): one row is picked per layer;
- Kozax's `pareto_front.csv`, `Complexity,Fitness,Equation 0`, one layer per file (written by `np.savetxt`
  without quoting, so an equation with commas spans several fields); or a directory of them, one per layer
  (`DIR/<layer>.csv` or `DIR/<layer>/pareto_front.csv`).

Every problem is an `ExprcError` that names the file, the line and the layer; expression errors keep their
column and caret. Nothing read here is ever evaluated: expressions go through `parse`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import json.decoder
import json.scanner
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cost import flops_paper
from ..errors import ExprcError, Span
from ..ir import Node
from .functions import DEFAULT_CLIP
from .layer_set import Layer, LayerSet
from .parse import parse

FORMAT = "exprc.layers/1"
MAX_FILE_BYTES = 50 * 2**20
MAX_LAYERS = 10_000
MAX_NAME_LENGTH = 200
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")  # timm module paths: blocks.0.norm1
SELECT = ("val", "train", "simplest", "knee")

PAPER_CSV = "gp-layernorm-csv"
PAPER_COLUMNS = ("Layer", "Run_Seed", "Train_MSE", "Val_MSE", "Expression")  # required; Complexity_Rank, FLOPs too
KOZAX_CSV = "kozax-pareto-csv"
KOZAX_FILE = "pareto_front.csv"

_SELECT_ALIASES = {"complexity": "simplest"}


def read_layers(source: str | Path | Mapping[str, Any], *, select: str = "val", seed: int | None = None,
                layer: str | None = None, clip: tuple[float, float] | None = None) -> LayerSet:
    """Read a layer file (or directory of Kozax fronts, or a mapping) into a `LayerSet`, in file order.

    select: which Pareto point per layer a CSV gives: "val" lowest validation error (Kozax: its fitness),
        "train" lowest training error, "simplest" (alias "complexity") fewest FLOPs as written (the paper's
        conventions, `exprc.cost.flops_paper`), "knee" the knee of the FLOPs/validation front (the GP-LayerNorm
        code's Kneedle choice). Ties go to fewer FLOPs, then file order.
    seed: keep only this `Run_Seed` (GP-LayerNorm CSV). layer: the layer name of a single Kozax file (default:
        its parent directory's name for `pareto_front.csv`, else the file name without `.csv`).
    clip: bounds of one-argument `clip(a)`, overriding the file's (default +-5).
    """
    select = _SELECT_ALIASES.get(select, select)
    if select not in SELECT:
        raise ExprcError(f"unknown selection {select!r}; expected one of {', '.join(SELECT)}")
    bounds = _check_clip(clip, "clip option") if clip is not None else None
    if isinstance(source, Mapping):
        return _from_mapping(source, bounds, seed, layer)
    path = Path(source)
    if path.is_dir():
        _refuse_option(seed, "seed", "a directory of Kozax fronts", str(path))
        _refuse_option(layer, "layer", "a directory of Kozax fronts", str(path))
        return _read_kozax_dir(path, select, bounds)
    data = _read_bytes(path)
    text = _decode(data, str(path))
    digest = hashlib.sha256(data).hexdigest()
    kind = _detect(text, path)
    if kind == "json":
        _refuse_option(seed, "seed", "a layers.json file", str(path))
        _refuse_option(layer, "layer", "a layers.json file", str(path))
        doc = _load_json(text, str(path))
        return _from_document(doc, str(path), text, bounds, str(path), digest)
    if kind == PAPER_CSV:
        _refuse_option(layer, "layer", "a GP-LayerNorm CSV (it names its layers)", str(path))
        cands = _paper_candidates(text, str(path), bounds or DEFAULT_CLIP, seed)
    else:
        _refuse_option(seed, "seed", "a Kozax pareto_front.csv", str(path))
        name = layer if layer is not None else _kozax_layer_name(path)
        _check_name(name, str(path))
        cands = _kozax_candidates(text, str(path), name, bounds or DEFAULT_CLIP)
    meta = {"format": kind, "select": select, "seed": seed, "rows": len(cands)}
    return _pick(cands, select, bounds, str(path), digest, meta)


# -- files ---------------------------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    where = str(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ExprcError("not a regular file", where=where)
        if size > MAX_FILE_BYTES:
            raise ExprcError(f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", where=where)
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ExprcError("no such file", where=where) from None
    except OSError as e:
        raise ExprcError(f"cannot read file: {e.strerror or e}", where=where) from None
    if len(data) > MAX_FILE_BYTES:
        raise ExprcError(f"file is larger than the limit of {MAX_FILE_BYTES} bytes", where=where)
    return data


def _decode(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExprcError(f"not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start}", where=where) from None
    if not text.strip():
        raise ExprcError("file is empty", where=where)
    if "\x00" in text:
        raise ExprcError(f"file contains a NUL character at line {text.count(chr(10), 0, text.index(chr(0))) + 1}",
                         where=where)
    return text


def _detect(text: str, path: Path) -> str:
    head = text.lstrip()
    if head[:1] in "{[" or path.suffix.lower() == ".json":
        return "json"
    first = head.split("\n", 1)[0].strip()
    columns = [c.strip() for c in next(csv.reader([first]), [])]
    if "Layer" in columns and "Expression" in columns:
        return PAPER_CSV
    if "Fitness" in columns and any(c.startswith("Equation") for c in columns):
        return KOZAX_CSV
    raise ExprcError(
        f"unrecognized layer file: expected a JSON object ({FORMAT}), a GP-LayerNorm CSV "
        f"({','.join(PAPER_COLUMNS)}) or a Kozax pareto_front.csv (Complexity,Fitness,Equation); "
        f"the first line is {first[:80]!r}", where=str(path))


def _refuse_option(value: Any, option: str, what: str, where: str) -> None:
    if value is not None:
        raise ExprcError(f"the {option} option does not apply to {what}", where=where)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1)


# -- JSON ------------------------------------------------------------------------------------------------------
class _DuplicateKey(Exception):
    def __init__(self, key: str, object_start: int = 0):
        self.key, self.object_start = key, object_start


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as e:
        raise ExprcError(f"invalid JSON: {e.msg}", Span(e.lineno, e.colno - 1, e.colno), text, where) from None
    except RecursionError:
        raise ExprcError("invalid JSON: nested too deeply", where=where) from None
    except _DuplicateKey as d:
        span = _duplicate_span(text, d.key)
        raise ExprcError(f"duplicate key {_show(d.key)}: given twice in one JSON object", span,
                         text if span else None, where) from None


def _duplicate_span(text: str, key: str) -> Span | None:
    """Where the second `key` of one object is: re-read with the pure-Python scanner, which tells object starts."""
    starts: list[int] = []

    def parse_object(s_and_end, *args):
        starts.append(s_and_end[1] - 1)
        try:
            return json.decoder.JSONObject(s_and_end, *args)
        finally:
            starts.pop()

    def pairs_hook(pairs):
        if len({k for k, _ in pairs}) < len(pairs):
            dup = next(k for i, (k, _) in enumerate(pairs) if k in {p for p, _ in pairs[:i]})
            raise _DuplicateKey(dup, starts[-1])
        return dict(pairs)

    decoder = json.JSONDecoder(object_pairs_hook=pairs_hook)
    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        decoder.decode(text)
    except _DuplicateKey as d:
        for spelling in {json.dumps(key, ensure_ascii=False), json.dumps(key)}:
            hits = list(re.finditer(re.escape(spelling) + r"\s*:", text[d.object_start:]))
            if len(hits) >= 2:
                line, col = _position(text, d.object_start + hits[1].start())
                return Span(line, col, col + len(spelling))
    except (ValueError, RecursionError):
        pass
    return None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"(\s*:)?')


def _key_spans(text: str | None) -> dict[str, Span]:
    """Where each object key first appears in the JSON text (one pass), for errors about that entry."""
    spans: dict[str, Span] = {}
    line, line_start, scanned = 1, 0, 0  # newlines are counted incrementally: one pass over the text
    for m in _JSON_STRING.finditer(text or ""):  # JSON has no quotes outside strings, so this stays in step
        if m.group(1) is None:
            continue
        try:
            key = json.loads(m.group(0)[: m.start(1) - m.start()])
        except ValueError:
            continue
        if key not in spans:
            line += text.count("\n", scanned, m.start())
            line_start = max(line_start, text.rfind("\n", scanned, m.start()) + 1)
            scanned = m.start()
            col = m.start() - line_start
            spans[key] = Span(line, col, col + m.start(1) - m.start())
    return spans


def _from_mapping(source: Mapping[str, Any], bounds, seed, layer) -> LayerSet:
    _refuse_option(seed, "seed", "a mapping", "<mapping>")
    _refuse_option(layer, "layer", "a mapping", "<mapping>")
    try:
        canonical = json.dumps(source, ensure_ascii=False)  # also makes tuples lists and checks JSON-safety
    except (TypeError, ValueError) as e:
        raise ExprcError(f"the mapping is not JSON data: {e}", where="<mapping>") from None
    doc = json.loads(canonical)
    return _from_document(doc, "<mapping>", None, bounds, None, hashlib.sha256(canonical.encode()).hexdigest())


def _from_document(doc: Any, where: str, text: str | None, bounds, source: str | None, digest: str) -> LayerSet:
    key_spans = _key_spans(text)

    def fail(msg: str, key: str | None = None) -> ExprcError:
        span = key_spans.get(key) if key is not None else None
        return ExprcError(msg, span, text if span else None, where)

    if not isinstance(doc, dict):
        raise fail(f"expected a JSON object at the top level, found {_json_type(doc)}")
    if "format" in doc or "layers" in doc:
        fmt = doc.get("format", FORMAT)
        if fmt != FORMAT:
            raise fail(f"unsupported format {_show(fmt)}; expected {FORMAT!r}", "format")
        if "layers" not in doc:
            raise fail('missing "layers": expected {"layers": {"blocks.0.norm1": "expr", ...}}')
        layers, model, file_clip = doc["layers"], doc.get("model"), doc.get("clip")
        meta = {k: v for k, v in doc.items() if k not in ("format", "model", "clip", "layers")}
        if not isinstance(layers, dict):
            raise fail(f'"layers" must be an object mapping layer names to expressions, found {_json_type(layers)}',
                       "layers")
        if model is not None and not isinstance(model, str):
            raise fail(f'"model" must be a string, found {_json_type(model)}', "model")
        if file_clip is not None:
            try:
                file_clip = _check_clip(file_clip, '"clip"')
            except ExprcError as e:
                raise fail(e.message, "clip") from None
    else:  # a bare {name: expr} mapping
        layers, model, file_clip, meta = doc, None, None, {}
    if not layers:
        raise fail("no layers")
    if len(layers) > MAX_LAYERS:
        raise fail(f"{len(layers)} layers; the limit is {MAX_LAYERS}")
    clip_bounds = bounds or file_clip or DEFAULT_CLIP
    out: dict[str, Layer] = {}
    for name, entry in layers.items():
        span = key_spans.get(name)
        at = f"{where}, line {span.line}" if span else where
        _check_name(name, where, text, span)
        if isinstance(entry, str):
            expr, layer_meta = entry, {}
        elif isinstance(entry, dict) and isinstance(entry.get("expr"), str):
            expr, layer_meta = entry["expr"], {k: v for k, v in entry.items() if k != "expr"}
        else:
            found = f'"expr" {_json_type(entry.get("expr"))}' if isinstance(entry, dict) else _json_type(entry)
            raise fail(f'layer {name!r}: expected an expression string or an object with an "expr" string, '
                       f"found {found}", name)
        out[name] = Layer(name, expr, _parse_at(expr, clip_bounds, f"{at}: layer {name!r}"), layer_meta)
    meta = {"format": FORMAT, **meta}
    return LayerSet(out, model, clip_bounds, source, digest, meta)


def _show(v: Any) -> str:
    """repr, shortened: user text quoted in one-line messages."""
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _json_type(v: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(v), type(v).__name__)


# -- checks shared by all formats ----------------------------------------------------------------------------
def _check_name(name: Any, where: str, text: str | None = None, span: Span | None = None) -> None:
    if isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and LAYER_NAME.fullmatch(name):
        return
    raise ExprcError(f"invalid layer name {_show(name)}: expected a module path like blocks.0.norm1 "
                     "(letters, digits and _, separated by dots)", span, text if span else None, where)


def _check_clip(value: Any, what: str) -> tuple[float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok:
        raise ExprcError(f"{what} must be two numbers [lo, hi], found {value!r}"[:200])
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ExprcError(f"{what} bounds must be finite, found [{lo!r}, {hi!r}]")
    if lo >= hi:
        raise ExprcError(f"{what} bounds out of order: lo {lo!r} must be below hi {hi!r}")
    return lo, hi


def _parse_at(expr: str, clip_bounds: tuple[float, float], where: str) -> Node:
    try:
        return parse(expr, clip_bounds)
    except ExprcError as e:
        raise e.with_where(where) from None


# -- Pareto CSVs ---------------------------------------------------------------------------------------------
@dataclass
class _Candidate:
    layer: str
    expr: str
    ir: Node
    line: int
    train: float  # nan when unknown
    val: float
    flops: int
    meta: dict[str, Any] = field(default_factory=dict)


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


def _paper_candidates(text: str, where: str, clip_bounds, seed: int | None) -> list[_Candidate]:
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
        _check_name(name, at)
        expr = fields[col["Expression"]]
        ir = _parse_at(expr, clip_bounds, f"{at}: layer {name!r}")
        train = _number(fields[col["Train_MSE"]], "Train_MSE", at)
        val = _number(fields[col["Val_MSE"]], "Val_MSE", at)
        meta: dict[str, Any] = {"seed": int(run_seed), "train_fitness": _finite_or_none(train),
                                "val_fitness": _finite_or_none(val), "line": line}
        if "Complexity_Rank" in col:
            meta["complexity_rank"] = int(_number(fields[col["Complexity_Rank"]], "Complexity_Rank", at))
        if "FLOPs" in col:
            meta["kozax_flops"] = _finite_or_none(_number(fields[col["FLOPs"]], "FLOPs", at))
        cands.append(_Candidate(name, expr, ir, line, train, val, flops_paper(ir), meta))
    if not cands:
        raise ExprcError(f"no rows with Run_Seed {seed}; seeds in the file: {', '.join(map(str, sorted(seeds)))}",
                         where=where)
    return cands


def _kozax_layer_name(path: Path) -> str:
    if path.name == KOZAX_FILE:
        return path.resolve().parent.name
    return path.name[:-4] if path.name.lower().endswith(".csv") else path.name


def _kozax_candidates(text: str, where: str, name: str, clip_bounds) -> list[_Candidate]:
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
        ir = _parse_at(expr, clip_bounds, f"{at}: layer {name!r}")
        fitness = _number(fields[col["Fitness"]], "Fitness", at)
        meta: dict[str, Any] = {"train_fitness": _finite_or_none(fitness), "line": line}
        if "Complexity" in col:
            meta["complexity"] = _finite_or_none(_number(fields[col["Complexity"]], "Complexity", at))
        cands.append(_Candidate(name, expr, ir, line, fitness, fitness, flops_paper(ir), meta))
    return cands


def _read_kozax_dir(path: Path, select: str, bounds) -> LayerSet:
    files = [(p.stem, p) for p in path.glob("*.csv") if p.is_file()]
    files += [(p.parent.name, p) for p in path.glob(f"*/{KOZAX_FILE}") if p.is_file()]
    if not files:
        raise ExprcError(f"no Kozax fronts here: expected <layer>.csv or <layer>/{KOZAX_FILE}", where=str(path))
    if len(files) > MAX_LAYERS:
        raise ExprcError(f"{len(files)} layer files; the limit is {MAX_LAYERS}", where=str(path))
    files.sort(key=lambda nf: _natural_key(nf[0]))
    digest = hashlib.sha256()
    cands: list[_Candidate] = []
    seen: dict[str, Path] = {}
    for name, file in files:
        where = str(file)
        _check_name(name, where)
        if name in seen:
            raise ExprcError(f"duplicate layer {name!r}: also in {seen[name]}", where=where)
        seen[name] = file
        data = _read_bytes(file)
        text = _decode(data, where)
        if _detect(text, file) != KOZAX_CSV:
            raise ExprcError("expected a Kozax pareto_front.csv (Complexity,Fitness,Equation 0)", where=where)
        rel = file.relative_to(path).as_posix().encode()
        digest.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
        for c in _kozax_candidates(text, where, name, bounds or DEFAULT_CLIP):
            c.meta["file"] = file.relative_to(path).as_posix()
            cands.append(c)
    meta = {"format": KOZAX_CSV, "select": select, "seed": None, "rows": len(cands)}
    return _pick(cands, select, bounds, str(path), digest.hexdigest(), meta)


def _natural_key(name: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


# -- choosing one point per layer ----------------------------------------------------------------------------
def _pick(cands: list[_Candidate], select: str, bounds, source: str, digest: str, meta: dict) -> LayerSet:
    by_layer: dict[str, list[_Candidate]] = {}
    for c in cands:
        by_layer.setdefault(c.layer, []).append(c)
    if len(by_layer) > MAX_LAYERS:
        raise ExprcError(f"{len(by_layer)} layers; the limit is {MAX_LAYERS}", where=source)
    layers = {}
    for name, group in by_layer.items():
        best = select_candidate(group, select)
        layers[name] = Layer(name, best.expr, best.ir, {**best.meta, "candidates": len(group)})
    return LayerSet(layers, None, bounds or DEFAULT_CLIP, source, digest, meta)


def _err(v: float) -> float:
    return v if not math.isnan(v) else math.inf  # a NaN error never wins


def select_candidate(group: list[_Candidate], select: str) -> _Candidate:
    if select == "val":
        return min(group, key=lambda c: (_err(c.val), c.flops, c.line))
    if select == "train":
        return min(group, key=lambda c: (_err(c.train), c.flops, c.line))
    if select == "simplest":
        return min(group, key=lambda c: (c.flops, _err(c.val), c.line))
    return _knee(group)


def _knee(group: list[_Candidate]) -> _Candidate:
    """Kneedle on the (FLOPs, validation error) front, as the GP-LayerNorm code's `get_optimal_by_kneedle`:
    keep the cheapest point per FLOPs value and only points that improve the error, then take the one farthest
    from the chord between the cheapest and the most accurate point."""
    front: list[_Candidate] = []
    seen_flops: set[int] = set()
    best = math.inf
    for c in sorted(group, key=lambda c: (c.flops, _err(c.val), c.line)):
        if c.flops in seen_flops:
            continue
        seen_flops.add(c.flops)
        if _err(c.val) < best or not front:
            front.append(c)
            best = min(best, _err(c.val))
    if len(front) <= 2:
        return front[-1]
    f0, f1 = front[0].flops, front[-1].flops
    m0, m1 = _err(front[-1].val), _err(front[0].val)
    if not (math.isfinite(m0) and math.isfinite(m1)) or f1 == f0 or m1 == m0:
        return front[-1]

    def norm(c: _Candidate) -> tuple[float, float]:
        return (c.flops - f0) / (f1 - f0), (_err(c.val) - m0) / (m1 - m0)

    (ax, ay), (bx, by) = norm(front[0]), norm(front[-1])
    chord = math.hypot(bx - ax, by - ay)

    def distance(c: _Candidate) -> float:
        cx, cy = norm(c)
        return abs((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) / chord

    return max(front, key=distance)  # max keeps the first of equals
