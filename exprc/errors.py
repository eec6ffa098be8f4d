"""The one error type of exprc: a message, and where in which text it happened."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Half-open character range [start, end) within one line of `text` (0-based columns)."""

    line: int  # 1-based
    start: int
    end: int


class ExprcError(Exception):
    """Raised for every user-facing failure: bad expressions, bad layer files, bad kernel directories.

    ``str(err)`` is one line (``where: message``); ``err.pretty()`` adds the source line with a caret under
    the span when the error points into an expression.
    """

    def __init__(self, message: str, span: Span | None = None, source: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.where = where

    def with_where(self, where: str) -> "ExprcError":
        """The same error, located in a file or layer (the innermost location is kept)."""
        if self.where:
            where = f"{where}: {self.where}"
        return ExprcError(self.message, self.span, self.source, where)

    def __str__(self) -> str:
        loc = self.where + ": " if self.where else ""
        pos = f"column {self.span.start + 1}: " if self.span is not None and self.source is not None else ""
        if self.span is not None and self.source is not None and self.source.count("\n"):
            pos = f"line {self.span.line}, column {self.span.start + 1}: "
        return f"{loc}{pos}{self.message}"

    def pretty(self) -> str:
        """The message, then the offending source line with ``^^^`` under the span."""
        text = str(self)
        if self.span is None or self.source is None:
            return text
        lines = self.source.split("\n")
        if not 1 <= self.span.line <= len(lines):
            return text
        line = lines[self.span.line - 1]
        shown = line if len(line) <= 200 else line[:200] + "..."
        start = min(self.span.start, len(shown))
        width = max(1, min(self.span.end, len(shown)) - start)
        safe = shown.encode("unicode_escape").decode("ascii") if not shown.isprintable() else shown
        return f"{text}\n    {safe}\n    {' ' * start}{'^' * width}"
