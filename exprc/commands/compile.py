"""`exprc compile`: layer file -> directory of generated kernels + manifest.json."""

from __future__ import annotations

import argparse

from ._common import add_layers_arguments, add_mode_argument, out, read_layer_file

HELP = "generate Triton kernels (element-wise and fused matmul epilogue) and a manifest for every layer"
DESCRIPTION = """Parse and optimize every expression of LAYERS and write into DIR one generated Python file per
distinct expression (the Triton kernels, their launchers and an eager torch fallback) and manifest.json
(format version, options, source hash, each layer's expression, kernel file and cost). The directory is written
next to DIR and renamed into place at the end: a failed or interrupted compile leaves the previous DIR whole.
Load the result with exprc.load(DIR).

examples:
  exprc compile examples/vit_b16_paper.json -o kernels/
  exprc compile layers.json -o kernels_fast/ --mode fast"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_layers_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory (replaced atomically)")
    add_mode_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


def run(args: argparse.Namespace) -> int:
    import time

    from ..codegen.package_writer import write_package

    t = time.perf_counter()
    ls = read_layer_file(args)
    path = write_package(ls, args.output, mode=args.mode)
    if not args.quiet:
        import json

        manifest = json.loads((path / "manifest.json").read_text())
        layers = _layers(manifest)
        ew = {v["kernel"] for v in layers if v.get("kernel")}
        mm = {v["epilogue"] for v in layers if v.get("epilogue")}
        out(f"wrote {path}: {len(ls)} layers, {len(ew)} element-wise and {len(mm)} matmul-epilogue kernel files, "
            f"{args.mode} mode ({time.perf_counter() - t:.2f} s)")
    return 0


def _layers(manifest: dict) -> list[dict]:
    layers = manifest.get("layers", [])
    return list(layers.values()) if isinstance(layers, dict) else layers
