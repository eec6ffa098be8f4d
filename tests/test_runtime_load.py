"""`exprc.load`: trusts a kernel directory only when its manifest checks out, before importing anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import exprc
from exprc.compiler import write_package
from exprc.errors import ExprcError
from exprc.frontend.layer_files import read_layers
from exprc.ir import evaluate

@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


LAYERS = {"blocks.0.norm1": "-0.522*x + 2.11*clip(x)", "blocks.0.norm2": "tanh(x) + tanh(x + 0.27)",
          "norm": "0.698*clip(2.31*x)"}


@pytest.fixture
def kernels(tmp_path) -> Path:
    return write_package(read_layers(LAYERS), tmp_path / "kernels")


def _manifest(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def _rewrite_manifest(d: Path, manifest: dict) -> None:
    (d / "manifest.json").write_text(json.dumps(manifest))


def test_loads_one_module_per_layer(kernels) -> None:
    norms = exprc.load(kernels, backend="torch", normalized_shape=16)
    assert list(norms) == list(LAYERS)
    x = torch.linspace(-8, 8, 64).reshape(4, 16)
    for name, norm in norms.items():
        assert isinstance(norm, exprc.ExprNorm) and norm.expr_text == LAYERS[name]
        ref = evaluate(exprc.parse(LAYERS[name]), x.double().numpy())
        np.testing.assert_allclose(norm(x).detach().double().numpy(), ref, rtol=1e-5, atol=1e-5)
    assert norms.manifest["format"] == "exprc.kernels/2" and norms.path == kernels


def test_layernorm_state_dict_loads_into_lazy_norms(kernels) -> None:
    norms = exprc.load(kernels, backend="torch")
    ln = torch.nn.LayerNorm(16)
    torch.nn.init.normal_(ln.weight)
    torch.nn.init.normal_(ln.bias)
    norm = norms["norm"]
    norm.load_state_dict(ln.state_dict())
    assert norm.normalized_shape == (16,) and torch.equal(norm.weight, ln.weight)
    x = torch.randn(3, 16)
    expected = 0.698 * torch.clamp(2.31 * x, -5, 5) * ln.weight + ln.bias
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    other = norms["blocks.0.norm1"]  # never loaded: shaped by its first input, ones and zeros
    assert other(torch.zeros(2, 8)).shape == (2, 8) and torch.equal(other.weight, torch.ones(8))


def test_per_layer_shapes(kernels) -> None:
    norms = exprc.load(kernels, normalized_shape={"norm": 32, "blocks.0.norm1": (4, 8)})
    assert norms["norm"].weight.shape == (32,) and norms["blocks.0.norm1"].weight.shape == (4, 8)
    assert norms["blocks.0.norm2"].normalized_shape is None


def test_refuses_a_missing_directory_or_manifest(tmp_path, kernels) -> None:
    with pytest.raises(ExprcError, match="no such kernel directory"):
        exprc.load(tmp_path / "nowhere")
    (kernels / "manifest.json").unlink()
    with pytest.raises(ExprcError, match="no manifest.json"):
        exprc.load(kernels)


@pytest.mark.parametrize("fmt", ["exprc.kernels/1", "exprc.kernels/3", "exprc.layers/1", None])
def test_refuses_another_format(kernels, fmt) -> None:
    m = _manifest(kernels)
    m["format"] = fmt
    _rewrite_manifest(kernels, m)
    with pytest.raises(ExprcError, match="format"):
        exprc.load(kernels)


def test_refuses_broken_json(kernels) -> None:
    (kernels / "manifest.json").write_text("{not json")
    with pytest.raises(ExprcError, match="not readable JSON"):
        exprc.load(kernels)


def test_refuses_a_tampered_file_before_importing_it(kernels, tmp_path) -> None:
    marker = tmp_path / "imported"
    name = _manifest(kernels)["layers"][0]["kernel"]
    path = kernels / name
    path.write_text(path.read_text() + f"\nopen({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ExprcError, match=f"{name} does not match its sha256"):
        exprc.load(kernels)
    assert not marker.exists()


def test_refuses_a_missing_file(kernels) -> None:
    name = _manifest(kernels)["layers"][1]["kernel"]
    (kernels / name).unlink()
    with pytest.raises(ExprcError, match=f"{name} listed in manifest.json is missing"):
        exprc.load(kernels)


@pytest.mark.parametrize("bad", ["../evil.py", "/etc/passwd", "sub/dir.py", "x.so"])
def test_refuses_file_names_outside_the_directory(kernels, bad) -> None:
    m = _manifest(kernels)
    m["files"][bad] = hashlib.sha256(b"").hexdigest()
    _rewrite_manifest(kernels, m)
    with pytest.raises(ExprcError, match="bad file entry"):
        exprc.load(kernels)


def test_refuses_layers_that_name_unlisted_files(kernels) -> None:
    m = _manifest(kernels)
    m["layers"][0]["kernel"] = "e_0000000000000000.py"
    _rewrite_manifest(kernels, m)
    with pytest.raises(ExprcError, match="bad layer entry"):
        exprc.load(kernels)


def test_error_names_the_directory(kernels) -> None:
    (kernels / "manifest.json").unlink()
    with pytest.raises(ExprcError) as info:
        exprc.load(kernels)
    assert str(kernels) in str(info.value)
