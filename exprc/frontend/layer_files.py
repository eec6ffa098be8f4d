"""Layer files -> `LayerSet`: one expression per normalization layer, whatever the file's format.

Formats, told apart by content (the extension is not trusted), each read by its own module:
- `layers.json` ("exprc.layers/1" or a bare {name: expr} object), or a Python mapping of the same shape:
  `layer_json`;
- the GP-LayerNorm code's Pareto CSV and Kozax's `pareto_front.csv` (a file, or a directory of them, one per
  layer): `layer_csv`, which picks one point per layer as `exprc.selection` defines.

Every problem is an `ExprcError` that names the file, the line and the layer; expression errors keep their
column and caret. Nothing read here is ever evaluated: expressions go through `parse`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ExprcError
from ..selection import SELECTIONS, canonical
from .functions import DEFAULT_CLIP
from .layer_checks import MAX_FILE_BYTES, MAX_LAYERS, check_clip, check_name, decode, read_bytes, refuse_option
from .layer_csv import (KOZAX_CSV, PAPER_COLUMNS, PAPER_CSV, csv_kind, kozax_candidates, kozax_layer_name,
                        paper_candidates, pick, read_kozax_dir)
from .layer_json import FORMAT, from_document, from_mapping, load_json
from .layer_set import LayerSet

__all__ = ["FORMAT", "KOZAX_CSV", "MAX_FILE_BYTES", "MAX_LAYERS", "PAPER_CSV", "SELECT", "detect", "read_layers"]

SELECT = SELECTIONS


def read_layers(source: str | Path | Mapping[str, Any], *, select: str = "val", seed: int | None = None,
                layer: str | None = None, clip: tuple[float, float] | None = None) -> LayerSet:
    """Read a layer file (or directory of Kozax fronts, or a mapping) into a `LayerSet`, in file order.

    select: which Pareto point per layer a CSV gives (`exprc.selection`): "val" lowest validation error (Kozax:
        its fitness), "train" lowest training error, "simplest" (alias "complexity") lowest complexity as the
        file gives it (the GP-LayerNorm CSV's FLOPs, a Kozax front's Complexity; without that column, the node
        count of the parsed expression), "knee" the knee of the complexity / log validation error front.
        Ties go to the simpler point, then to file order.
    seed: keep only this `Run_Seed` (GP-LayerNorm CSV). layer: the layer name of a single Kozax file (default:
        its parent directory's name for `pareto_front.csv`, else the file name without `.csv`).
    clip: bounds of one-argument `clip(a)`, overriding the file's (default +-5).
    """
    how = canonical(select)
    if how is None:
        raise ExprcError(f"unknown selection {select!r}; expected one of {', '.join(SELECT)}")
    bounds = check_clip(clip, "clip option") if clip is not None else None
    if isinstance(source, Mapping):
        refuse_option(seed, "seed", "a mapping", "<mapping>")
        refuse_option(layer, "layer", "a mapping", "<mapping>")
        return from_mapping(source, bounds)
    path = Path(source)
    where = str(path)
    if path.is_dir():
        refuse_option(seed, "seed", "a directory of Kozax fronts", where)
        refuse_option(layer, "layer", "a directory of Kozax fronts", where)
        return read_kozax_dir(path, how, bounds)
    data = read_bytes(path)
    text = decode(data, where)
    digest = hashlib.sha256(data).hexdigest()
    kind = detect(text, path)
    if kind == "json":
        refuse_option(seed, "seed", "a layers.json file", where)
        refuse_option(layer, "layer", "a layers.json file", where)
        return from_document(load_json(text, where), where, text, bounds, where, digest)
    if kind == PAPER_CSV:
        refuse_option(layer, "layer", "a GP-LayerNorm CSV (it names its layers)", where)
        cands = paper_candidates(text, where, bounds or DEFAULT_CLIP, seed)
    else:
        refuse_option(seed, "seed", "a Kozax pareto_front.csv", where)
        name = layer if layer is not None else kozax_layer_name(path)
        check_name(name, where)
        cands = kozax_candidates(text, where, name, bounds or DEFAULT_CLIP)
    meta = {"format": kind, "select": how, "seed": seed, "rows": len(cands)}
    return pick(cands, how, bounds, where, digest, meta)


def detect(text: str, path: Path) -> str:
    """"json", PAPER_CSV or KOZAX_CSV: JSON by its first character (or a .json name), CSVs by their header."""
    head = text.lstrip()
    if head[:1] in "{[" or path.suffix.lower() == ".json":
        return "json"
    first = head.split("\n", 1)[0].strip()
    kind = csv_kind(first)
    if kind is None:
        raise ExprcError(
            f"unrecognized layer file: expected a JSON object ({FORMAT}), a GP-LayerNorm CSV "
            f"({','.join(PAPER_COLUMNS)}) or a Kozax pareto_front.csv (Complexity,Fitness,Equation); "
            f"the first line is {first[:80]!r}", where=str(path))
    return kind
