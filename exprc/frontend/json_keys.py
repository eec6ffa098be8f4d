"""Where the keys of a JSON text are, for errors that point at them.

`json.loads` tells what a document holds, not where; this module reads the same text once more with a small
tokenizer (strings and the six structural characters; numbers and literals hold neither quotes nor brackets, so
they can be skipped) and records each key's line and columns under its object's path from the root, e.g. the
layer "clip" of `{"clip": [...], "layers": {"clip": ...}}` is at `("layers",)`, apart from the top-level "clip".
It also finds the first key repeated within one object, in the order `json.loads` meets it (an object is
complete, and checked, at its closing brace, so inner objects come first). Only text that `json.loads` accepted
is given to it.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field

from ..errors import Span

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')

KeyPath = tuple  # keys (str) and array indices (int) from the root to an object


@dataclass
class _Container:
    path: KeyPath
    is_object: bool
    keys: dict[str, int] = field(default_factory=dict)  # key -> offset of its first occurrence
    expect_key: bool = True
    last: str | int = 0  # the current key, or the current array index
    repeated: tuple[str, int] | None = None  # the first key given twice here, and the offset of the second


@dataclass(frozen=True)
class KeyIndex:
    """Every object's keys by path, each at its first occurrence, and the first repeated key if any."""

    text: str
    offsets: dict[KeyPath, dict[str, int]]
    repeated: tuple[str, int] | None
    _line_starts: list[int]

    def span(self, path: KeyPath, key: str) -> Span | None:
        """The span of `"key"` (quotes included) in the object at `path`, or None if that object lacks it."""
        offset = self.offsets.get(tuple(path), {}).get(key)
        return None if offset is None else self._span_at(offset)

    def repeated_span(self) -> Span | None:
        return None if self.repeated is None else self._span_at(self.repeated[1])

    def _span_at(self, offset: int) -> Span:
        line = bisect.bisect_right(self._line_starts, offset)
        col = offset - self._line_starts[line - 1]
        end = _TOKEN.match(self.text, offset).end()
        return Span(line, col, col + end - offset)


def index_keys(text: str) -> KeyIndex:
    """Read `text` (JSON that `json.loads` accepted) into a `KeyIndex`, in one pass."""
    offsets: dict[KeyPath, dict[str, int]] = {}
    repeated: tuple[str, int] | None = None
    stack: list[_Container] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        top = stack[-1] if stack else None
        if tok in "{[":
            path = () if top is None else (*top.path, top.last)
            stack.append(_Container(path, tok == "{"))
            if tok == "{":
                offsets.setdefault(path, {})
        elif tok in "}]":
            done = stack.pop()
            if done.repeated is not None and repeated is None:
                repeated = done.repeated
        elif tok == ",":
            if top.is_object:
                top.expect_key = True
            else:
                top.last += 1
        elif tok != ":" and top is not None and top.is_object and top.expect_key:  # a string that is a key
            key = json.loads(tok)
            if key in top.keys:
                top.repeated = top.repeated or (key, m.start())
            else:
                top.keys[key] = m.start()
                offsets[top.path][key] = m.start()
            top.last, top.expect_key = key, False
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return KeyIndex(text, offsets, repeated, line_starts)
