"""examples/vit_b16_paper.json: the 25 expressions of the paper's Table 4, with its metadata."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from exprc.cost import flops_paper
from exprc.frontend.layer_files import read_layers
from exprc.ir import evaluate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vit_b16_paper.json"
TIMM_VIT_B_NORMS = [f"blocks.{i}.norm{j}" for i in range(12) for j in (1, 2)] + ["norm"]


@pytest.fixture(scope="module")
def paper():
    return read_layers(EXAMPLE)


def test_layers_are_vit_b_norms_in_model_order(paper):
    assert [layer.name for layer in paper] == TIMM_VIT_B_NORMS
    assert paper.model == "vit_base_patch16_224"
    assert paper.clip == (-5.0, 5.0)
    assert paper.meta["format"] == "exprc.layers/1"
    assert paper.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()


def test_paper_flops_total_474(paper):
    assert all(isinstance(layer.meta["paper_flops"], int) for layer in paper)
    assert sum(layer.meta["paper_flops"] for layer in paper) == 474


def test_paper_flops_agree_with_the_expressions(paper):
    """Counting the transcribed expressions under the paper's conventions gives Table 4's column, layer by layer:
    a check on the transcription (a lost minus sign does not change FLOPs, but a lost term or tanh does)."""
    assert {layer.name: flops_paper(layer.ir) for layer in paper} == {
        layer.name: layer.meta["paper_flops"] for layer in paper}


def test_table4_metadata(paper):
    first, last = paper.layers["blocks.0.norm1"], paper.layers["norm"]
    assert first.expr == "-0.522*x + 2.11*clip(x)"
    assert first.meta == {"complexity": 6, "train_fitness": 0.0995, "val_fitness": 0.1149, "paper_flops": 3}
    assert last.expr == "x*tanh(sigmoid(clip(-0.000308*x**2)))"
    assert last.meta["val_fitness"] == 0.1001


@pytest.mark.parametrize("name, reference", [
    ("blocks.2.norm1", lambda x: -0.84 * x + 1.31 * np.clip(2 * x, -5, 5)
     + 0.548 * np.tanh(np.tanh(np.tanh(x)) + 0.227)),
    ("blocks.4.norm1", lambda x: (x + 0.0719) * (-0.307 * x * np.tanh(2.99 * x) + 2.46)),
    ("blocks.7.norm2", lambda x: 0.862 * np.clip(x, -5, 5) + 0.862 * np.clip(-0.077 * x + np.clip(x, -5, 5), -5, 5)
     + 0.172),
    ("blocks.10.norm2", lambda x: np.clip(-0.106 * x, -5, 5) + np.clip(x, -5, 5) + 0.154),
    ("blocks.11.norm2", lambda x: np.clip(x * np.tanh(1 / (1 + np.exp(0.0401 * x * np.tanh(x)))), -5, 5)),
])
def test_signs_and_values(paper, name, reference):
    x = np.linspace(-20, 20, 401)
    np.testing.assert_allclose(evaluate(paper.layers[name].ir, x), reference(x), rtol=1e-13, atol=1e-15)
