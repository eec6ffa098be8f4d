"""`exprc.warmup`: one forward per batch size, in eval mode without gradients, the model's mode restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import exprc


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = exprc.ExprNorm(8, "tanh(x)", backend="torch")
        self.seen: list[tuple[tuple[int, ...], bool, bool]] = []

    def forward(self, x):
        self.seen.append((tuple(x.shape), self.training, torch.is_grad_enabled()))
        return self.norm(x)


def test_one_forward_per_batch_size_in_eval_without_grad() -> None:
    model = Recorder().train()
    seconds = exprc.warmup(model, torch.randn(2, 3, 8), batch_sizes=[1, 2, 5])
    assert seconds >= 0 and model.training  # restored
    assert model.seen == [((2, 3, 8), False, False), ((1, 3, 8), False, False), ((5, 3, 8), False, False)]


def test_bad_batch_size_is_refused_and_mode_restored() -> None:
    model = Recorder().train()
    with pytest.raises(ValueError, match="positive"):
        exprc.warmup(model, torch.randn(2, 8), batch_sizes=[0])
    assert model.training
