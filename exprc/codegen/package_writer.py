"""LayerSet -> a directory of generated kernel modules plus `manifest.json`, written atomically.

    out_dir/
      manifest.json       format "exprc.kernels/1": version, options, source file + sha256, layers, file hashes
      ew_<hash>.py        one element-wise module per distinct lowered expression (see `elementwise.py`)
      mm_<hash>.py        the fused matmul-epilogue module of the same expression, when that generator exists

File names come from a hash of the lowered IR, never from layer names; layer names appear only in the manifest
(JSON). The output is deterministic: the same input and options give byte-identical files.

Atomicity: everything is written into a temporary directory next to `out_dir`, which then replaces `out_dir`
in one `renameat2(RENAME_EXCHANGE)` where the OS has it (else two renames). A failed or killed compile leaves the
previous `out_dir` whole. An existing `out_dir` is only replaced when it is empty or holds an exprc manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExprcError
from ..frontend.layer_set import LayerSet
from ..ir import Node
from .elementwise import FILE_PREFIX, generate_elementwise_source, ir_digest, kernel_file_name
from .replace_dir import replace_dir

MANIFEST = "manifest.json"
FORMAT = "exprc.kernels/1"


@dataclass
class _Kernel:
    """One distinct lowered expression and what is generated for it."""

    root: Node
    expressions: list[str] = field(default_factory=list)  # source texts, in order of first use
    files: dict[str, str] = field(default_factory=dict)  # role ("kernel", "epilogue") -> file name


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _epilogue_generator():
    """The fused matmul-epilogue generator, if this build of exprc has one."""
    try:
        from .matmul_epilogue import generate_epilogue_source
    except ImportError:
        return None
    return generate_epilogue_source


def _layer_cost(layer_ir: Node, optimized: Node) -> dict | None:
    try:
        from ..cost import layer_cost
    except ImportError:
        return None
    return layer_cost(layer_ir, optimized)


def build_package(layer_set: LayerSet, mode: str = "precise", epilogue: bool = True) -> dict[str, bytes]:
    """File name -> contents of the package for `layer_set` (nothing written)."""
    from .. import __version__
    from ..passes.pipeline import optimize

    kernels: dict[str, _Kernel] = {}  # ir digest -> kernel, in order of first use
    layer_kernels = []
    for layer in layer_set:
        root = optimize(layer.ir, mode).root
        k = kernels.setdefault(ir_digest(root), _Kernel(root))
        if layer.expr not in k.expressions:
            k.expressions.append(layer.expr)
        layer_kernels.append((layer, k))

    files: dict[str, bytes] = {}
    gen_epilogue = _epilogue_generator() if epilogue else None
    for k in kernels.values():
        name = kernel_file_name(k.root)
        files[name] = generate_elementwise_source(k.root, expressions=k.expressions, mode=mode).encode()
        k.files["kernel"] = name
        if gen_epilogue is not None:
            mm_name = "mm_" + name.removeprefix(FILE_PREFIX)
            # the expression texts are user input: JSON-escaped, they are safe inside the module's docstring
            text = ", ".join(json.dumps(e) for e in k.expressions)
            files[mm_name] = gen_epilogue(k.root, expr_text=text, mode=mode).encode()
            k.files["epilogue"] = mm_name

    layers = []
    for layer, k in layer_kernels:
        entry = {"name": layer.name, "expr": layer.expr, **k.files}
        cost = _layer_cost(layer.ir, k.root)
        if cost is not None:
            entry["cost"] = cost
        layers.append(entry)
    source = None
    if layer_set.source is not None:
        source = {"file": Path(layer_set.source).name, "sha256": layer_set.sha256}
    manifest = {
        "format": FORMAT,
        "exprc_version": __version__,
        "options": {"mode": mode, "clip": list(layer_set.clip)},
        "model": layer_set.model,
        "source": source,
        "layers": layers,
        "files": {name: sha256_bytes(data) for name, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=True) + "\n").encode()
    return files


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but an empty directory or a previous exprc output."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise ExprcError(f"{out_dir} exists and is not a directory", where="output")
    if not any(out_dir.iterdir()):
        return
    try:
        fmt = json.loads((out_dir / MANIFEST).read_text()).get("format", "")
    except (OSError, ValueError, AttributeError):
        fmt = ""
    if not str(fmt).startswith("exprc.kernels/"):
        raise ExprcError(f"refusing to replace {out_dir}: it is not empty and holds no exprc {MANIFEST}",
                         where="output")


def write_package(layer_set: LayerSet, out_dir: str | os.PathLike, mode: str = "precise", *,
                  epilogue: bool = True) -> Path:
    """Generate the kernels of every layer and write them, with `manifest.json`, to `out_dir` (atomically).

    Returns the path of the written directory. Raises ExprcError (nothing written) when `out_dir` cannot be
    replaced; a failure while generating leaves the previous `out_dir` as it was.
    """
    out = Path(out_dir)
    if out.name in ("", ".", ".."):
        out = out.resolve()
    _check_replaceable(out)
    files = build_package(layer_set, mode, epilogue=epilogue)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.chmod(tmp, 0o755)
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
