"""layers.json -> `LayerSet`: the `exprc.layers/1` document, a bare {name: expr} object, or a Python mapping.

    {"format": "exprc.layers/1", "model": "vit_base_patch16_224", "clip": [-5, 5],
     "layers": {"blocks.0.norm1": "expr", "norm": {"expr": "expr", ...metadata}}, ...metadata}

A document is told from a bare mapping by a top-level "format" or "layers" key. A key given twice in one object
is an error. Errors about an entry point at its key, found by path (`json_keys`), so a layer named like a
top-level key ("clip", "model", ...) is reported at its own line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import ExprcError, Span
from ..ir import Node
from .functions import DEFAULT_CLIP
from .json_keys import KeyIndex, KeyPath, index_keys
from .layer_checks import MAX_LAYERS, check_clip, is_layer_name, name_error, show
from .layer_set import Layer, LayerSet
from .parse import parse

FORMAT = "exprc.layers/1"
TOP_LEVEL = ("format", "model", "clip", "layers")  # the document's own keys; any other is kept as metadata


class _Repeated(Exception):
    def __init__(self, key: str):
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Repeated(k)
        out[k] = v
    return out


def load_json(text: str, where: str) -> Any:
    """`text` as JSON data; invalid JSON and repeated keys are errors with a line and column."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as e:
        raise ExprcError(f"invalid JSON: {e.msg}", Span(e.lineno, e.colno - 1, e.colno), text, where) from None
    except RecursionError:
        raise ExprcError("invalid JSON: nested too deeply", where=where) from None
    except _Repeated as r:
        span = index_keys(text).repeated_span()
        raise ExprcError(f"duplicate key {show(r.key)}: given twice in one JSON object", span,
                         text if span else None, where) from None


def from_mapping(source: Mapping[str, Any], bounds: tuple[float, float] | None) -> LayerSet:
    """A Python mapping shaped like a layers.json document (tuples are taken as lists)."""
    try:
        canonical = json.dumps(source, ensure_ascii=False)  # also checks JSON-safety
    except (TypeError, ValueError) as e:
        raise ExprcError(f"the mapping is not JSON data: {e}", where="<mapping>") from None
    doc = json.loads(canonical)
    return from_document(doc, "<mapping>", None, bounds, None, hashlib.sha256(canonical.encode()).hexdigest())


class _Locator:
    """Errors at a key of the text, when there is a text; the text is indexed on the first error only."""

    def __init__(self, text: str | None, where: str):
        self.text, self.where = text, where
        self._index: KeyIndex | None = None

    def span(self, path: KeyPath, key: str) -> Span | None:
        if self.text is None:
            return None
        if self._index is None:
            self._index = index_keys(self.text)
        return self._index.span(path, key)

    def error(self, msg: str, path: KeyPath = (), key: str | None = None) -> ExprcError:
        span = self.span(path, key) if key is not None else None
        return ExprcError(msg, span, self.text if span else None, self.where)


def from_document(doc: Any, where: str, text: str | None, bounds: tuple[float, float] | None,
                  source: str | None, digest: str) -> LayerSet:
    """The layers of a parsed layers.json; `text` (when read from a file) locates errors; `bounds` override."""
    at = _Locator(text, where)
    if not isinstance(doc, dict):
        raise at.error(f"expected a JSON object at the top level, found {_json_type(doc)}")
    if "format" in doc or "layers" in doc:
        fmt = doc.get("format", FORMAT)
        if fmt != FORMAT:
            raise at.error(f"unsupported format {show(fmt)}; expected {FORMAT!r}", (), "format")
        if "layers" not in doc:
            raise at.error('missing "layers": expected {"layers": {"blocks.0.norm1": "expr", ...}}')
        layers, model, file_clip = doc["layers"], doc.get("model"), doc.get("clip")
        meta = {k: v for k, v in doc.items() if k not in TOP_LEVEL}
        layers_path: KeyPath = ("layers",)
        if not isinstance(layers, dict):
            raise at.error(f'"layers" must be an object mapping layer names to expressions, found '
                           f"{_json_type(layers)}", (), "layers")
        if model is not None and not isinstance(model, str):
            raise at.error(f'"model" must be a string, found {_json_type(model)}', (), "model")
        if file_clip is not None:
            try:
                file_clip = check_clip(file_clip, '"clip"')
            except ExprcError as e:
                raise at.error(e.message, (), "clip") from None
    else:  # a bare {name: expr} mapping
        layers, model, file_clip, meta, layers_path = doc, None, None, {}, ()
    if not layers:
        raise at.error("no layers")
    if len(layers) > MAX_LAYERS:
        raise at.error(f"{len(layers)} layers; the limit is {MAX_LAYERS}")
    clip_bounds = bounds or file_clip or DEFAULT_CLIP
    out: dict[str, Layer] = {}
    for name, entry in layers.items():
        if not is_layer_name(name):
            raise name_error(name, where, at.span(layers_path, name), text)
        if isinstance(entry, str):
            expr, layer_meta = entry, {}
        elif isinstance(entry, dict) and isinstance(entry.get("expr"), str):
            expr, layer_meta = entry["expr"], {k: v for k, v in entry.items() if k != "expr"}
        else:
            found = f'"expr" {_json_type(entry.get("expr"))}' if isinstance(entry, dict) else _json_type(entry)
            raise at.error(f'layer {name!r}: expected an expression string or an object with an "expr" string, '
                           f"found {found}", layers_path, name)
        out[name] = Layer(name, expr, _parse_entry(expr, clip_bounds, name, at, layers_path), layer_meta)
    return LayerSet(out, model, clip_bounds, source, digest, {"format": FORMAT, **meta})


def _parse_entry(expr: str, clip_bounds: tuple[float, float], name: str, at: _Locator, layers_path: KeyPath) -> Node:
    """The layer's IR; an error says the file, the line of the layer's key and the layer, then the column."""
    try:
        return parse(expr, clip_bounds)
    except ExprcError as e:
        span = at.span(layers_path, name)
        line = f"{at.where}, line {span.line}" if span else at.where
        raise e.with_where(f"{line}: layer {name!r}") from None


def _json_type(v: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(v), type(v).__name__)
