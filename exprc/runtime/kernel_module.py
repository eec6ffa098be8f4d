"""Importing generated kernel modules: from a verified kernel directory, or generated on the fly from an expression.

A generated module is imported from the exact bytes that were checked (a loader that serves those bytes and
never reads or writes bytecode caches), with Python's line cache primed with the same text, because
`@triton.jit` reads its function's source through it. Each distinct content is imported once per process and
per Triton mode (compiled or TRITON_INTERPRET=1, fixed when the module is imported).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import linecache
import os
import sys
from pathlib import Path
from types import ModuleType

from ..ir import Node


def interpreting() -> bool:
    """Whether Triton runs jit functions in its interpreter (TRITON_INTERPRET=1), as `@triton.jit` decides."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on", "y")


class _VerifiedSourceLoader(importlib.machinery.SourceFileLoader):
    """Serves the given source bytes for `path` and never touches `__pycache__`."""

    def __init__(self, fullname: str, path: str, data: bytes):
        super().__init__(fullname, path)
        self._data = data

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            return self._data
        raise OSError(f"{path}: generated kernels are imported from source only")

    def path_stats(self, path: str):
        raise OSError("no bytecode cache for generated kernels")


def import_kernel_source(path: Path, data: bytes) -> ModuleType:
    """Import `data` (the verified contents of the generated file `path`) as a module, once per content."""
    digest = hashlib.sha256(data).hexdigest()[:20]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    name = f"_exprc_kernel_{stem}_{digest}_{'interpreted' if interpreting() else 'compiled'}"
    if name in sys.modules:
        return sys.modules[name]
    filename = str(path.resolve())
    text = data.decode("utf-8")
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    loader = _VerifiedSourceLoader(name, filename, data)
    spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    module.__exprc_source__ = data
    return module


class KernelRef:
    """Holds a generated module for an nn.Module: deep copies share it; pickles carry its source and import it
    again (as `import_kernel_source`) when loaded."""

    def __init__(self, module: ModuleType):
        self.module = module

    def __deepcopy__(self, memo) -> KernelRef:
        return self

    def __reduce__(self):
        return (_reimport, (self.module.__file__, self.module.__exprc_source__))


def _reimport(filename: str, data: bytes) -> KernelRef:
    return KernelRef(import_kernel_source(Path(filename), data))


def cache_dir() -> Path:
    """Where kernels generated on the fly are written: $EXPRC_CACHE_DIR, else ~/.cache/exprc/kernels."""
    env = os.environ.get("EXPRC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "exprc" / "kernels"


def kernel_module_for(root: Node, mode: str, expressions: tuple[str, ...] = ()) -> ModuleType:
    """The element-wise module of the lowered IR `root`, generated into `cache_dir()` and imported."""
    from ..codegen.elementwise import generate_elementwise_source

    data = generate_elementwise_source(root, expressions=expressions, mode=mode).encode()
    path = cache_dir() / f"ew_{hashlib.sha256(data).hexdigest()[:24]}.py"
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return import_kernel_source(path, data)
