"""Writing a file all at once: into a temporary file beside it, then renamed into place.

A reader sees the old file or the new one, never half of one. The new file gets the permissions any new file
gets (0666 less the umask, like `open(path, "w")`), unlike `tempfile.mkstemp`, whose files are always 0600.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_ATTEMPTS = 100  # random names tried before giving up (each collision is a 1 in 2**32 chance)


@contextmanager
def atomic_write(path: str | os.PathLike, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing (text in UTF-8, or `binary`); when the block ends
    without an exception, rename it to `path`; otherwise remove it and leave `path` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _create_beside(path)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_beside(path: Path) -> tuple[Path, int]:
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:  # O_EXCL: never an existing file; 0o666: the process umask applies, as for any new file
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")
