"""Writes the golden outputs that `tests/test_golden.py` holds the compiler to.

Frozen before the redesign of issue 8 (one driver, kernels written once, rules as data), whose promise is that
behaviour and numbers stay as they are. Rerun this only for a change of numbers that is intended, and say so in
the commit:

    TRITON_INTERPRET=1 python tests/golden/make_golden.py

What it writes next to itself:
- cost_vit_b16_paper.json: `exprc cost examples/vit_b16_paper.json --json`;
- lowered_ir.json: the lowered IR text of every example layer in every mode, and after every pass of the small
  layer file below;
- expr_functions.json: the generated Triton and torch functions of the small layer file in every mode;
- kernel_outputs.npz: the element-wise kernel of every example layer and mode run by Triton's interpreter on
  fixed inputs (x, w, b) -> y;
- tiny_vit.pt: a tiny timm ViT's weights, its input, and its logits fused (Triton interpreter) and unfused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PAPER = ROOT / "examples" / "vit_b16_paper.json"
MODES = ("precise", "fast", "horner")
SMALL = {  # a fixed small layer file: clip-linear, a tanh chain with shifted exps, sigmoid and pow
    "a": "-0.522*x + 2.11*clip(x)",
    "b": "tanh(x) + tanh(x + 0.27)",
    "c": "(x + 0.0719)*(-0.307*x*tanh(2.99*x) + 2.46)",
    "d": "clip(x*tanh(sigmoid(-0.0401*x*x**2)))",
}
TINY_LAYERS = {
    "blocks.0.norm1": "-0.522*x + 2.11*clip(x)",
    "blocks.0.norm2": "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)",
    "blocks.1.norm1": "0.698*clip(2.31*x)",
    "blocks.1.norm2": "clip(x*tanh(sigmoid(-0.0401*x*tanh(x))))",
    "norm": "2.5*tanh(clip(x)) + 0.135",
}
D = 48


def kernel_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    edge = [0.0, 1e-30, -1e-30, 1e30, -1e30, 3e38, -3e38, np.inf, -np.inf, np.nan, 1.0, -1.0, 5.0, -5.0]
    x = np.concatenate([edge, rng.normal(0, 3, 500), np.linspace(-12, 12, 250)]).astype(np.float32)
    x = x[: (x.size // D) * D].reshape(-1, D)
    w = rng.normal(1, 0.5, D).astype(np.float32)
    b = rng.normal(0, 0.5, D).astype(np.float32)
    return x, w, b


def tiny_vit():
    import torch
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=1.0,
                              num_classes=10)
    with torch.no_grad():  # norms' affine and biases random too, so that each of them shows in the logits
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


def main() -> None:
    assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
    import torch

    from exprc.frontend.layer_files import read_layers
    from exprc.frontend.parse import parse
    from exprc.ir import print_ir
    from exprc.passes.pipeline import optimize

    cost = subprocess.run([sys.executable, "-m", "exprc.cli", "cost", str(PAPER), "--json"], check=True,
                          capture_output=True, text=True, cwd=ROOT).stdout
    (HERE / "cost_vit_b16_paper.json").write_text(cost)

    paper = read_layers(PAPER)
    lowered = {"paper": {mode: {layer.name: print_ir(optimize(layer.ir, mode).root) for layer in paper}
                         for mode in MODES},
               "small_stages": {mode: {name: [[s.name, print_ir(s.root)] for s in optimize(parse(e), mode).stages]
                                       for name, e in SMALL.items()} for mode in MODES}}
    (HERE / "lowered_ir.json").write_text(json.dumps(lowered, indent=1, sort_keys=True) + "\n")

    from exprc.codegen.emit_torch import emit_torch_function
    from exprc.codegen.emit_triton import emit_expr_function

    import re

    def unwrap(code: str) -> str:  # lines the emitter wraps after a comma, joined (what test_golden compares)
        return re.sub(r",\n +", ", ", code)

    functions = {mode: {name: {"triton": unwrap(emit_expr_function(optimize(parse(e), mode).root, "expr_fn")),
                               "torch": unwrap(emit_torch_function(optimize(parse(e), mode).root, "expr_torch"))}
                        for name, e in SMALL.items()} for mode in MODES}
    (HERE / "expr_functions.json").write_text(json.dumps(functions, indent=1, sort_keys=True) + "\n")

    import exprc

    x, w, b = kernel_inputs()
    outputs = {"x": x, "w": w, "b": b}
    for mode in MODES:
        for layer in paper:
            norm = exprc.ExprNorm(D, layer.expr, mode=mode, backend="triton")
            with torch.no_grad():
                norm.weight.copy_(torch.from_numpy(w))
                norm.bias.copy_(torch.from_numpy(b))
                outputs[f"{mode}/{layer.name}"] = norm(torch.from_numpy(x)).numpy()
    np.savez_compressed(HERE / "kernel_outputs.npz", **outputs)

    model = tiny_vit()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    images = torch.randn(3, 3, 32, 32)
    import copy

    unfused = exprc.patch_timm(copy.deepcopy(model), TINY_LAYERS, fuse=False, backend="torch")
    fused = exprc.patch_timm(model, TINY_LAYERS, fuse=True)
    with torch.no_grad():
        logits = {"unfused": unfused(images), "fused": fused(images)}
    torch.save({"state_dict": state, "images": images, "layers": TINY_LAYERS, **logits}, HERE / "tiny_vit.pt")
    print("golden outputs written to", HERE)


if __name__ == "__main__":
    main()
