"""`exprc.load(DIR)`: a directory written by `exprc compile` -> one `ExprNorm` per layer.

Trust model: a kernel directory is code. Loading it imports its generated Python files, so load only
directories you would `import` (as with a pickle or a `torch.load(weights_only=False)`). The checks below catch a
stale, truncated or edited directory, not a malicious one: whoever can write the files can write the manifest.

The manifest is checked before any generated file is imported: it must exist and parse, carry the format this
exprc reads, list only plain file names in the directory, every listed file's sha256 must match, and every layer
must name a listed file and a known placement. A file is then imported from the very bytes that were hashed.
Anything wrong is an `ExprcError` naming the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ExprcError

from ..codegen.package_writer import FORMAT, MANIFEST
from ..codegen.planner import KINDS
_FILE_NAME = re.compile(r"[A-Za-z0-9_]+\.py")


class LoadedKernels(dict):
    """Layer name -> ExprNorm, in manifest order; `.manifest` and `.path` tell where they came from."""

    def __init__(self, items, manifest: dict[str, Any], path: Path):
        super().__init__(items)
        self.manifest = manifest
        self.path = path


def _fail(path: Path, message: str) -> ExprcError:
    return ExprcError(message, where=str(path))


def read_manifest(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The checked manifest of the kernel directory `path` and the verified bytes of every file it lists."""
    root = Path(path)
    if not root.is_dir():
        raise _fail(root, "no such kernel directory (write one with `exprc compile LAYERS -o DIR`)")
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(root, f"no {MANIFEST}: not a kernel directory written by `exprc compile`") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _fail(root, f"{MANIFEST} is not readable JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise _fail(root, f"{MANIFEST} is not a JSON object")
    fmt = manifest.get("format")
    if fmt != FORMAT:
        raise _fail(root, f"{MANIFEST} has format {fmt!r}; this exprc reads {FORMAT!r} (recompile with "
                          "`exprc compile`)")
    files = manifest.get("files")
    layers = manifest.get("layers")
    if not isinstance(files, dict) or not isinstance(layers, list):
        raise _fail(root, f"{MANIFEST} lacks its 'files' object or 'layers' list")
    contents: dict[str, bytes] = {}
    for name, digest in files.items():
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or not isinstance(digest, str):
            raise _fail(root, f"{MANIFEST} lists a bad file entry {name!r}: {digest!r}")
        try:
            data = (root / name).read_bytes()
        except FileNotFoundError:
            raise _fail(root, f"file {name} listed in {MANIFEST} is missing") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise _fail(root, f"file {name} does not match its sha256 in {MANIFEST} (edited or corrupted; "
                              "recompile with `exprc compile`)")
        contents[name] = data
    seen: set[str] = set()
    for entry in layers:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or \
                not isinstance(entry.get("expr"), str) or entry.get("kernel") not in contents:
            raise _fail(root, f"{MANIFEST} has a bad layer entry {json.dumps(entry)[:200]}")
        if entry.get("placement") not in KINDS:
            raise _fail(root, f"{MANIFEST}: layer {entry['name']!r} has placement {entry.get('placement')!r}; "
                              f"expected one of {', '.join(KINDS)}")
        if entry["name"] in seen:
            raise _fail(root, f"{MANIFEST} names layer {entry['name']!r} twice")
        seen.add(entry["name"])
    return manifest, contents


def expression_modules(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, ModuleType]]:
    """The checked manifest of the kernel directory `path` and its generated modules by file name, imported (in
    Triton's current mode) from the verified bytes."""
    from .kernels.support import import_source

    root = Path(path)
    manifest, contents = read_manifest(root)
    return manifest, {name: import_source(root / name, data) for name, data in contents.items()}


def load(path: str | os.PathLike, backend: str = "auto", normalized_shape=None, *, device=None,
         dtype=None) -> LoadedKernels:
    """Layer name -> `ExprNorm` for the kernel directory `path`. The directory is code: its files are imported
    (see the module docstring for the trust model and the checks made first).

    normalized_shape: an int or tuple for every layer, a {layer name: shape} mapping, or None for lazy
    parameters (shaped by the first loaded state dict or input).
    """
    from .expr_norm import BACKENDS, ExprNorm

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    manifest, modules = expression_modules(path)
    norms = []
    for entry in manifest["layers"]:
        shape = normalized_shape.get(entry["name"]) if isinstance(normalized_shape, dict) else normalized_shape
        norms.append((entry["name"], ExprNorm(shape, modules[entry["kernel"]], backend=backend, device=device,
                                              dtype=dtype, expr_text=entry["expr"])))
    return LoadedKernels(norms, manifest, Path(path))
