"""Kozax's raw tree text made easier to read, never changed in meaning.

Kozax's `tree_to_string` parenthesizes every operand: `(clip((0.2478)+((2.56)*(tanh(x)))))*(0.98)`. Its
constants are float32 values at full precision (its sympy-printed Pareto front rounds them to 3 digits, which is
why the raw text is used). Parentheses around a single name, number or function call are dropped; the result
must parse to the very same IR as the raw text, otherwise the raw text is kept.
"""

from __future__ import annotations

import re

from ..errors import ExprcError
from ..frontend.parse import parse

_ATOM = re.compile(r"x|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_CALL_START = re.compile(r"[A-Za-z_]\w*\(")


def _matching_parens(text: str) -> dict[int, int]:
    stack, match = [], {}
    for k, ch in enumerate(text):
        if ch == "(":
            stack.append(k)
        elif ch == ")" and stack:
            match[stack.pop()] = k
    return match


def _drop_one(text: str) -> str | None:
    """`text` with one redundant pair of parentheses removed, or None if there is none."""
    match = _matching_parens(text)
    for i in sorted(match):
        if i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_."):
            continue  # the parenthesis of a call
        j = match[i]
        inside = text[i + 1:j]
        call = _CALL_START.match(inside)
        if _ATOM.fullmatch(inside) or (call and match.get(i + call.end()) == j - 1):
            return text[:i] + inside + text[j + 1:]
    return None


def tidy_expression(raw: str) -> str:
    """`(clip((x)+(0.5)))*(2.0)` -> `clip(x+0.5)*2.0`, if that parses to the same IR; else `raw`."""
    text = raw
    while (shorter := _drop_one(text)) is not None:
        text = shorter
    try:
        return text if parse(text) is parse(raw) else raw
    except ExprcError:
        return raw
