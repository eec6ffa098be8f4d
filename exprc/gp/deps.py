"""A clear error, rather than a traceback, when an optional dependency of a GP command is not installed."""

from __future__ import annotations

import importlib.util

from ..errors import ExprcError


def require(command: str, modules: tuple[str, ...], extra: str) -> None:
    """Raise `ExprcError` naming the missing modules and the pip extra that brings them."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExprcError(f"`exprc {command}` needs {', '.join(missing)}, which is not installed: "
                         f"pip install 'exprc[{extra}]'")
