"""Golden outputs frozen before the redesign (see `tests/golden/make_golden.py`): the cost table, the lowered IR
of every example layer in every mode (and after every pass for a small layer file), the generated expression
functions, the element-wise kernels' outputs under Triton's interpreter, and a tiny ViT's logits.

The compiler may change shape; these numbers may not (unless a change is intended and the golden files are
rewritten in the same commit, saying why)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import exprc
from exprc.frontend.layer_files import read_layers
from exprc.frontend.parse import parse
from exprc.ir import print_ir
from exprc.passes.pipeline import optimize

GOLDEN = Path(__file__).resolve().parent / "golden"
ROOT = GOLDEN.parents[1]
PAPER = ROOT / "examples" / "vit_b16_paper.json"
LOWERED = json.loads((GOLDEN / "lowered_ir.json").read_text())
FUNCTIONS = json.loads((GOLDEN / "expr_functions.json").read_text())
sys.path.insert(0, str(GOLDEN))
from make_golden import D, SMALL  # noqa: E402

sys.path.pop(0)


def test_cost_json_is_unchanged() -> None:
    got = subprocess.run([sys.executable, "-m", "exprc", "cost", str(PAPER), "--json"], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    want = json.loads((GOLDEN / "cost_vit_b16_paper.json").read_text())
    got = json.loads(got)
    assert Path(got.pop("source")).name == Path(want.pop("source")).name  # a path: where the checkout is
    assert got == want


@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
def test_lowered_ir_of_every_example_layer_is_unchanged(mode: str) -> None:
    for layer in read_layers(PAPER):
        assert print_ir(optimize(layer.ir, mode).root) == LOWERED["paper"][mode][layer.name], layer.name


@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_ir_after_every_pass_is_unchanged(mode: str, name: str) -> None:
    stages = [[s.name, print_ir(s.root)] for s in optimize(parse(SMALL[name]), mode).stages]
    assert stages == LOWERED["small_stages"][mode][name]


@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_generated_expression_functions_are_unchanged(mode: str, name: str) -> None:
    from exprc.codegen.emit_torch import emit_torch_function
    from exprc.codegen.emit_triton import emit_expr_function

    root = optimize(parse(SMALL[name]), mode).root
    # lines over 120 columns are wrapped after a comma since the golden files were written: the same code
    assert unwrap(emit_expr_function(root, "expr_fn")) == FUNCTIONS[mode][name]["triton"]
    assert unwrap(emit_torch_function(root, "expr_torch")) == FUNCTIONS[mode][name]["torch"]


def unwrap(code: str) -> str:
    return re.sub(r",\n +", ", ", code)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("mode", ["precise", "fast", "horner"])
def test_interpreted_kernel_outputs_are_unchanged(triton_interpret, mode: str) -> None:
    golden = np.load(GOLDEN / "kernel_outputs.npz")
    x, w, b = (torch.from_numpy(golden[k]) for k in ("x", "w", "b"))
    for layer in read_layers(PAPER):
        norm = exprc.ExprNorm(D, layer.expr, mode=mode, backend="triton")
        with torch.no_grad():
            norm.weight.copy_(w)
            norm.bias.copy_(b)
            y = norm(x).numpy()
        np.testing.assert_array_equal(y, golden[f"{mode}/{layer.name}"], err_msg=f"{mode} {layer.name}")


def test_tiny_vit_logits_are_unchanged(triton_interpret) -> None:
    timm_vit = pytest.importorskip("timm.models.vision_transformer")
    import copy

    saved = torch.load(GOLDEN / "tiny_vit.pt", weights_only=True)
    model = timm_vit.VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=2,
                                       mlp_ratio=1.0, num_classes=10).eval()
    model.load_state_dict(saved["state_dict"])
    unfused = exprc.patch_timm(copy.deepcopy(model), saved["layers"], fuse=False, backend="torch")
    fused = exprc.patch_timm(model, saved["layers"], fuse=True)
    with torch.no_grad():
        torch.testing.assert_close(unfused(saved["images"]), saved["unfused"], rtol=0, atol=0)
        # the fused plan may place a norm differently (a prologue folds the affine into the next Linear):
        # within f32 rounding of the frozen logits
        torch.testing.assert_close(fused(saved["images"]), saved["fused"], rtol=1e-5, atol=1e-5)
