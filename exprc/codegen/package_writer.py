"""A compiled layer set (`exprc.compiler.Artifact`) -> a directory of generated modules plus `manifest.json`,
written atomically.

    out_dir/
      manifest.json       format "exprc.kernels/2": exprc version, options, the model context of the plan, the
                          source file + sha256, each layer (expression, module, cost, placement and why), file hashes
      e_<hash>.py         one generated module per distinct (mode, lowered expression): see `expr_module.py`

File names come from a hash of the mode and the lowered IR, never from layer names; layer names appear only in
the manifest (JSON). The output is deterministic: the same input and options give byte-identical files.

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
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ExprcError
from .replace_dir import replace_dir

if TYPE_CHECKING:
    from ..compiler import Artifact

MANIFEST = "manifest.json"
FORMAT = "exprc.kernels/2"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_lines(key: str, items: list, last: bool = False) -> str:
    """`"key": [` then one compact JSON value a line: a manifest that reads (and diffs) one layer a line."""
    body = ",\n".join("  " + json.dumps(item, ensure_ascii=True) for item in items)
    return f' "{key}": [\n{body}\n ]' + ("" if last else ",")


def manifest_text(artifact: Artifact, files: dict[str, bytes]) -> str:
    from .. import __version__

    ls = artifact.layer_set
    source = {"file": Path(ls.source).name, "sha256": ls.sha256} if ls.source is not None else None
    head = {"format": FORMAT, "exprc_version": __version__,
            "options": {"mode": artifact.mode, "clip": list(ls.clip)},
            "context": artifact.context.as_dict(), "model": ls.model, "source": source}
    layers = [{"name": la.name, "expr": la.expr, "kernel": la.compiled.file_name, "cost": la.compiled.cost,
               "placement": la.plan.kind, "reason": la.plan.reason}
              | ({"lowering": la.compiled.auto.modes()} if la.compiled.auto else {}) for la in artifact.layers]
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=True)}," for k, v in head.items()]
    lines.append(_json_lines("layers", layers))
    lines.append(' "files": {\n' + ",\n".join(f"  {json.dumps(n)}: {json.dumps(sha256_bytes(d))}"
                                                for n, d in sorted(files.items())) + "\n }")
    return "\n".join(lines) + "\n}\n"


def build_files(artifact: Artifact) -> dict[str, bytes]:
    """File name -> contents of the package for `artifact` (nothing written)."""
    files = {k.file_name: k.source().encode() for k in artifact.kernels.values()}
    files[MANIFEST] = manifest_text(artifact, files).encode()
    return files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def write_files(artifact: Artifact, out_dir: str | os.PathLike) -> Path:
    """Write the generated modules of `artifact`, with `manifest.json`, to `out_dir` (atomically).

    Returns the path of the written directory. Raises ExprcError (nothing written) when `out_dir` cannot be
    replaced; a failure while generating leaves the previous `out_dir` as it was.
    """
    out = Path(out_dir)
    if out.name in ("", ".", ".."):
        out = out.resolve()
    _check_replaceable(out)
    files = build_files(artifact)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700: give it what mkdir would
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
