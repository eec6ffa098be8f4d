"""What generated expression modules and the kernel families share: Triton's mode and the right `libdevice`.

Triton decides when `@triton.jit` runs whether a function is compiled or interpreted (TRITON_INTERPRET=1), so a
kernel module and the expression modules it calls must be imported in the same mode. `import_source` imports a
file in a given mode; `libdevice_module()` is what a generated module binds `libdevice` to: Triton's real
libdevice when compiling, numpy stand-ins under the interpreter (which cannot run libdevice calls).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import linecache
import os
import sys
from pathlib import Path
from types import ModuleType

_TRUE = ("1", "true", "yes", "on", "y")


def interpreting() -> bool:
    """Whether `@triton.jit` makes interpreted functions now (TRITON_INTERPRET, or Triton's knob when set)."""
    try:
        from triton import knobs

        return bool(knobs.runtime.interpret)
    except (ImportError, AttributeError):
        return os.environ.get("TRITON_INTERPRET", "0").lower() in _TRUE


def is_interpreted(fn) -> bool:
    """Whether the jit function `fn` runs in Triton's interpreter."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(fn, InterpretedFunction)


STORAGE_FUNCTIONS = {"bfloat16": "expr_fn_bf16", "float16": "expr_fn_f16"}  # see codegen/expr_module.py
_VIEWS: dict[tuple[int, str], ModuleType] = {}


def for_storage(module: ModuleType, storage: str) -> ModuleType:
    """What a kernel storing `storage` ("float32", "bfloat16", "float16") runs: an auto-mode module's own forward
    function for a 16-bit dtype whose lowering was chosen apart (`expr_fn_bf16`, `expr_fn_f16`) as `expr_fn` of
    a view of the module, else `module` itself."""
    name = STORAGE_FUNCTIONS.get(storage)
    fn = getattr(module, name, None) if name else None
    if fn is None:
        return module
    view = _VIEWS.get((id(module), name))
    if view is None:
        view = ModuleType(module.__name__)
        view.__dict__.update({k: v for k, v in vars(module).items() if k != "__name__"})
        view.expr_fn = fn
        _VIEWS[id(module), name] = view
    return view


def libdevice_module() -> ModuleType:
    """The `libdevice` a generated module imported now must call."""
    if interpreting():
        from . import interpreter_libdevice

        return interpreter_libdevice
    from triton.language.extra import libdevice

    return libdevice


@contextlib.contextmanager
def triton_mode(interpreted: bool):
    """`@triton.jit` makes interpreted (True) or compiled (False) functions inside this block."""
    try:
        from triton import knobs

        scope = knobs.runtime.scope()
    except (ImportError, AttributeError):  # Triton without knobs: the environment variable alone
        scope = None
    saved = os.environ.get("TRITON_INTERPRET")
    if scope is not None:
        with scope:
            knobs.runtime.interpret = interpreted
            yield
        return
    os.environ["TRITON_INTERPRET"] = "1" if interpreted else "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = saved


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Serves the given source bytes for `path` and never touches `__pycache__`."""

    def __init__(self, fullname: str, path: str, data: bytes):
        super().__init__(fullname, path)
        self._data = data

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            return self._data
        raise OSError(f"{path}: kernel modules are imported from the given source only")

    def path_stats(self, path: str):
        raise OSError("no bytecode cache for kernel modules")


def import_source(path: Path, data: bytes, interpreted: bool | None = None) -> ModuleType:
    """Import `data` (the source of the file `path`) as a module in Triton's `interpreted` or compiled mode
    (default: the current one); once per content and mode. Python's line cache is primed with the same text,
    because `@triton.jit` reads a function's source through it."""
    interpreted = interpreting() if interpreted is None else interpreted
    digest = hashlib.sha256(data).hexdigest()[:20]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    name = f"_exprc_{stem}_{digest}_{'interpreted' if interpreted else 'compiled'}"
    if name in sys.modules:
        return sys.modules[name]
    filename = str(path.resolve())
    text = data.decode("utf-8")
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    loader = _SourceLoader(name, filename, data)
    spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with triton_mode(interpreted):
            loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    module.__exprc_source__ = data
    return module


def jit_helpers(name: str) -> ModuleType:
    """The jit helper module `name` of this package (e.g. grouped_tiles) in Triton's current mode: what a kernel
    family imported by `import_source` calls its shared jit functions through."""
    path = Path(__file__).with_name(f"{name}.py")
    return import_source(path, path.read_bytes(), interpreting())
