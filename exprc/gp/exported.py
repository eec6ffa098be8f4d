"""A traced step kept across processes: JAX's exported form (serialized StableHLO) beside the compilation cache.

JAX's persistent compilation cache (jax_setup.py) spares a second process XLA's compilation, but not the Python
tracing and lowering that come before it and find the cache entry, and for Kozax's evolution step those take
seconds (tens of seconds on a busy 2-core machine). So the step is exported once (`jax.export`) and stored under
the compilation cache's directory, keyed by everything the trace depends on: the versions of jax, jaxlib and
kozax, the source of exprc's GP package, the caller's key (the engine's settings) and the arguments' shapes. A
later process deserializes it instead of tracing; every process calls the exported module, so its compiled form
is the same cache entry each time. Without a compilation cache directory (tests), the step is simply jitted.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

from ..atomic_write import atomic_write

_SOURCE = Path(__file__).resolve().parent


def _digest(parts) -> str:
    h = hashlib.sha256(repr(parts).encode())
    for path in sorted(_SOURCE.glob("*.py")):
        h.update(path.read_bytes())
    for name in ("jax", "jaxlib", "kozax"):
        try:
            h.update(f"{name}={version(name)}".encode())
        except PackageNotFoundError:
            h.update(f"{name}=?".encode())
    return h.hexdigest()[:40]


def _write(path: Path, blob: bytes) -> None:
    """Atomically, and not at all if the directory cannot be written (the step then runs traced)."""
    try:
        with atomic_write(path, binary=True) as f:
            f.write(blob)
    except OSError:
        pass


class ExportedStep:
    """`jitted` (a `jax.jit` function of arrays) called through its exported form, cached on disk per argument
    shapes; `key` names what else the trace depends on."""

    def __init__(self, jitted: Callable, key):
        self.jitted, self.key = jitted, key
        self._calls: dict[tuple, Callable] = {}

    def __call__(self, *args):
        import jax

        shapes = tuple((tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(args))
        if shapes not in self._calls:
            self._calls[shapes] = self._load(args, shapes)
        return self._calls[shapes](*args)

    def _load(self, args, shapes) -> Callable:
        import jax
        from jax import export

        directory = jax.config.jax_compilation_cache_dir
        if not directory:
            return self.jitted
        path = Path(directory) / "exported" / f"{_digest((self.key, shapes))}.jaxexport"
        try:
            exported = export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # missing, cut short or from another JAX: trace again
            try:
                exported = export.export(self.jitted)(*args)
            except Exception:  # a step JAX cannot export is traced in every process, as before
                return self.jitted
            _write(path, bytes(exported.serialize()))
        return jax.jit(exported.call)
