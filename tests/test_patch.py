"""`exprc.patch(model, layers)`: the LayerNorms of any model (here a hand-written transformer with Hugging Face
style names) replaced by name, unfused, with their affine; the model computes what its norms' expressions say."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import exprc
from exprc import ExprcError
from exprc.runtime.expr_norm import ExprNorm


class Layer(nn.Module):
    def __init__(self, d: int = 16):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(d)
        self.attention = nn.MultiheadAttention(d, 2, batch_first=True)
        self.layernorm_after = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        h = self.layernorm_before(x)
        x = x + self.attention(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.layernorm_after(x))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList([Layer(), Layer()])
        self.final_layernorm = nn.LayerNorm(16)

    def forward(self, x):
        for layer in self.layer:
            x = layer(x)
        return self.final_layernorm(x)


LAYERS = {"layer.0.layernorm_before": "0.698*clip(2.31*x)", "layer.0.layernorm_after": "tanh(x) + tanh(x + 0.27)",
          "layer.1.layernorm_before": "-0.522*x + 2.11*clip(x)", "layer.1.layernorm_after": "2.5*tanh(clip(x))",
          "final_layernorm": "x*tanh(sigmoid(clip(-0.000308*x**2)))"}


def _model() -> Encoder:
    torch.manual_seed(0)
    model = Encoder().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.5)
    return model


def test_any_model_is_patched_by_name():
    model = _model()
    original = copy.deepcopy(model)
    patched = exprc.patch(model, LAYERS)
    assert patched is model
    for name, text in LAYERS.items():
        norm = model.get_submodule(name)
        ln = original.get_submodule(name)
        assert isinstance(norm, ExprNorm) and norm.expr_text == text
        assert torch.equal(norm.weight, ln.weight) and torch.equal(norm.bias, ln.bias)
    assert list(model.state_dict()) == list(original.state_dict())

    # the patched model computes the original with each LayerNorm replaced by f(x) * w + b
    def replaced(name):
        ln, f = original.get_submodule(name), exprc.compile_expr(LAYERS[name])
        module = exprc.compiler.expression_module(f)
        return lambda x: module.expr_torch(x) * ln.weight + ln.bias

    for name in LAYERS:
        parent, _, child = name.rpartition(".")
        setattr(original.get_submodule(parent) if parent else original, child, _Lambda(replaced(name)))
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x), rtol=1e-6, atol=1e-6)


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_names_must_match():
    with pytest.raises(ExprcError, match="no expression for LayerNorm"):
        exprc.patch(_model(), {k: v for k, v in LAYERS.items() if k != "final_layernorm"})
    with pytest.raises(ExprcError, match="did you mean 'final_layernorm'"):
        exprc.patch(_model(), {**{k: v for k, v in LAYERS.items() if k != "final_layernorm"},
                               "final_layer_norm": "x"})
