"""Put a freshly written directory in place of another one, so that no reader ever sees a half-written one.

Linux (3.15+, glibc 2.28+) swaps two directories in one step with `renameat2(RENAME_EXCHANGE)`; elsewhere the
old directory is renamed aside first, leaving a window of microseconds in which neither is at `dst` (the old one
is then still whole, under a `.old-` name next to it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False when the OS cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def replace_dir(src: Path, dst: Path) -> None:
    """Move directory `src` to `dst`, replacing whatever directory is at `dst`; `src` is gone afterwards."""
    if not dst.exists():
        os.rename(src, dst)
        return
    if _exchange(src, dst):  # dst now holds the new tree, src the old one
        shutil.rmtree(src)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
    os.rename(dst, old / dst.name)
    os.rename(src, dst)
    shutil.rmtree(old)
