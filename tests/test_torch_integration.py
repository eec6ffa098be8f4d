"""A patched random-init timm ViT used the way PyTorch users use models: `torch.compile` (forward and backward),
`torch.export` with a dynamic batch (saved and loaded in a fresh process), ONNX export run by ONNX Runtime,
pickle and `torch.save` of a fused model. On the CPU, exprc's operators run their generated torch code."""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import exprc

timm_vit = pytest.importorskip("timm.models.vision_transformer")

LAYERS = {
    "blocks.0.norm1": "-0.522*x + 2.11*clip(x)",
    "blocks.0.norm2": "-0.84*x + 1.31*clip(2*x) + 0.548*tanh(tanh(tanh(x)) + 0.227)",
    "blocks.1.norm1": "0.698*clip(2.31*x)",
    "blocks.1.norm2": "clip(x*tanh(sigmoid(-0.0401*x*tanh(x))))",
    "norm": "x*tanh(sigmoid(clip(-0.000308*x**2))) + 0.3*x",
}
BATCH = torch.export.Dim("batch")


def vit(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = timm_vit.VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=2,
                                       mlp_ratio=1.0, num_classes=10)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


@pytest.fixture(scope="module")
def patched():
    model = exprc.patch_timm(vit(), LAYERS)
    assert set(model._exprc_fusion.placement.values()) >= {"epilogue", "prologue"}
    return model


def test_torch_compile_forward_and_backward(patched) -> None:
    """Inductor on the CPU, a dynamic batch: eval logits and training gradients equal eager ones."""
    x = torch.randn(3, 3, 32, 32)
    model = copy.deepcopy(patched)
    compiled = torch.compile(model, dynamic=True)
    with torch.no_grad():
        for batch in (x, torch.randn(5, 3, 32, 32)):
            torch.testing.assert_close(compiled(batch), model(batch), rtol=1e-4, atol=1e-4)
    model.train()
    eager = copy.deepcopy(model)
    compiled(x).square().sum().backward()
    eager(x).square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-4, msg=name)
    assert model.blocks[0].norm2.weight.grad.abs().sum() > 0


def test_torch_export_with_a_dynamic_batch_saved_and_loaded_elsewhere(patched, tmp_path) -> None:
    x = torch.randn(2, 3, 32, 32)
    program = torch.export.export(patched, (x,), dynamic_shapes=({0: BATCH},))
    targets = {str(n.target) for n in program.graph.nodes}
    assert "exprc.linear_residual_norm.default" in targets and "exprc.expr_norm.default" in targets
    x5 = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        want = patched(x5)
    torch.testing.assert_close(program.module()(x5), want)
    path = tmp_path / "vit.pt2"
    torch.export.save(program, path)
    np.save(tmp_path / "x.npy", x5.numpy())
    code = ("import numpy as np, torch, exprc\n"
            f"p = torch.export.load({str(path)!r})\n"
            f"y = p.module()(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r})))\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, y.detach().numpy())\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "y.npy")), want)


def test_onnx_export_gives_standard_operators_and_runs_in_onnx_runtime(tmp_path) -> None:
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = exprc.patch_timm(vit(), LAYERS, mode="horner")  # horner's bit tricks must not reach the graph
    path = tmp_path / "vit.onnx"
    exprc.export_onnx(model, (torch.randn(2, 3, 32, 32),), path, dynamic_shapes=({0: BATCH},))
    graph = onnx.load(path).graph
    kinds = {n.op_type for n in graph.node}
    assert {"Tanh", "Sigmoid", "Clip"} <= kinds
    assert all(n.domain in ("", "ai.onnx") for n in graph.node), {n.domain for n in graph.node}
    session = ort.InferenceSession(str(path))
    x = torch.randn(5, 3, 32, 32)  # another batch size than exported with
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    reference = exprc.patch_timm(vit(), LAYERS, fuse=False, mode="precise", backend="torch")
    with torch.no_grad():
        np.testing.assert_allclose(got, reference(x).numpy(), rtol=1e-4, atol=1e-4)


def test_a_fused_model_pickles_and_saves_whole(patched) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = patched(x)
    again = pickle.loads(pickle.dumps(patched))
    buf = io.BytesIO()
    torch.save(patched, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    for model in (again, loaded):
        assert model.forward_features.model is model and model._exprc_fusion.placement == \
            patched._exprc_fusion.placement
        with torch.no_grad():
            torch.testing.assert_close(model(x), want, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_torch_compile_runs_the_triton_kernels_on_a_gpu(dtype) -> None:
    """On CUDA the operators run exprc's Triton kernels (a constexpr jit function inside a user kernel): under
    torch.compile too, with outputs compared (Inductor has had bugs that drop a user kernel)."""
    model = exprc.patch_timm(vit(), LAYERS).to("cuda", dtype)
    x = torch.randn(4, 3, 32, 32, device="cuda", dtype=dtype)
    with torch.no_grad():
        want = model(x)
        got = torch.compile(model)(x)
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(got.float(), want.float(), rtol=tol, atol=tol)
    model.train()
    torch.compile(model)(x).float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.gpu
def test_the_fused_forward_is_captured_in_a_cuda_graph() -> None:
    model = exprc.patch_timm(vit(), LAYERS).to("cuda", torch.bfloat16)
    x = torch.randn(4, 3, 32, 32, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        want = model(x)  # first call: kernels compiled, tiles from the table
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model(x)
        x.copy_(torch.randn_like(x))
        graph.replay()
        torch.testing.assert_close(out, model(x))
    assert not torch.equal(out, want)
