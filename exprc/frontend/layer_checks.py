"""What every layer-file format checks the same way: file size and encoding, layer names, clip bounds, expressions.

Every problem is an `ExprcError` naming the file (and, where known, the line and the layer).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..errors import ExprcError, Span
from ..ir import Node
from .parse import parse

MAX_FILE_BYTES = 50 * 2**20
MAX_LAYERS = 10_000
MAX_NAME_LENGTH = 200
LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")  # timm module paths: blocks.0.norm1


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing, special or too large file is an error (a large one is not read)."""
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


def decode(data: bytes, where: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); empty text and NUL characters are errors."""
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


def refuse_option(value: Any, option: str, what: str, where: str) -> None:
    if value is not None:
        raise ExprcError(f"the {option} option does not apply to {what}", where=where)


def is_layer_name(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and LAYER_NAME.fullmatch(name) is not None


def name_error(name: Any, where: str, span: Span | None = None, text: str | None = None) -> ExprcError:
    return ExprcError(f"invalid layer name {show(name)}: expected a module path like blocks.0.norm1 "
                      "(letters, digits and _, separated by dots)", span, text if span else None, where)


def check_name(name: Any, where: str) -> None:
    if not is_layer_name(name):
        raise name_error(name, where)


def check_clip(value: Any, what: str) -> tuple[float, float]:
    """`value` as (lo, hi) clip bounds: two finite numbers, lo below hi."""
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


def parse_layer(expr: str, clip_bounds: tuple[float, float], where: str) -> Node:
    """`parse`, with the error located at `where` (file, line, layer); its column and caret are kept."""
    try:
        return parse(expr, clip_bounds)
    except ExprcError as e:
        raise e.with_where(where) from None


def show(v: Any) -> str:
    """repr, shortened: user text quoted in one-line messages."""
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."
