"""Long generated lines wrapped inside their parentheses, so generated files stay within the project's 120
columns (`ruff check` covers `kernels/` too)."""

from __future__ import annotations

WIDTH = 120
CONTINUATION = 8  # extra indentation of a continuation line


def _break_points(line: str) -> list[int]:
    """Indices just after each ', ' that sits inside parentheses (where a line may break)."""
    points, depth = [], 0
    for i, c in enumerate(line):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth > 0 and line[i + 1:i + 2] == " ":
            points.append(i + 2)
    return points


def wrap_line(line: str, width: int = WIDTH) -> list[str]:
    """`line` as one or more lines of at most `width` columns where it can break after a comma inside
    parentheses (a line without such a place stays whole)."""
    if len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + CONTINUATION)
    out, start = [], 0
    points = _break_points(line)
    while len(line) - start + (len(indent) if out else 0) > width:
        limit = start + width - (len(indent) if out else 0)
        fits = [p for p in points if start < p <= limit]
        if not fits:
            break
        out.append(line[start:fits[-1]].rstrip())
        start = fits[-1]
    return [out[0], *(indent + part for part in out[1:])] + ([indent + line[start:]] if out else [line])


def wrap_lines(text: str, width: int = WIDTH) -> str:
    return "\n".join(part for line in text.split("\n") for part in wrap_line(line, width))
