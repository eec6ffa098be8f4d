"""torchrun with two CPU processes (gloo) trains the same parameters as one process with the same global batch.

GP-D (fused GP norms, the frozen LayerNorm teacher) on an ImageFolder the test writes: one process takes the
global batch of 16 as 2 micro-batches of 8; under torchrun each of two processes takes its 8 as 2 micro-batches of
4, DistributedDataParallel averaging the gradients. Stochastic depth is off (it draws from each process's own
generator); augmentation stays on, since every sample is augmented by generators seeded from its (epoch, index),
whichever process loads it. The same samples make up each step; only the order of floating-point sums differs.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest
import torch
from test_realign_support import model_flags, write_image_folder, write_layers

from exprc.cli import main

STEPS = 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    data = write_image_folder(tmp / "data", train_per_class=8, val_per_class=2)
    layers = write_layers(tmp / "layers.json")
    common = [*model_flags(), "--layers", str(layers), "--variant", "D", "--data", str(data), "--batch-size", "16",
              "--epochs", "2", "--max-steps", str(STEPS), "--lr", "3e-3", "--drop-path", "0", "--workers", "0",
              "--checkpoint-every", "0", "--no-eval-original", "--quiet", "--seed", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "exprc", "realign", *common, "--micro-batch", "4", "-o", str(tmp / "two")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stdout + two.stderr
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as one:
            assert main(["realign", *common, "--micro-batch", "8", "-o", str(tmp / "one")]) == 0
    finally:
        torch.set_num_threads(saved)
    return tmp, one.getvalue(), two.stdout


def _load(path):
    return torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=True)


def test_two_processes_train_the_same_parameters_as_one(runs) -> None:
    tmp, one, two = runs
    a, b = _load(tmp / "one"), _load(tmp / "two")
    assert a["position"] == b["position"] == {"epoch": 2, "step": 0, "global_step": STEPS}
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():  # Adam moves each weight by up to lr = 3e-3 a step: 1.2e-2 in all
        torch.testing.assert_close(b["model"][key], value, rtol=0, atol=2e-5, msg=key)
    assert [r["top1"] for r in a["log"]["epochs"]] == [r["top1"] for r in b["log"]["epochs"]]


def test_torchrun_reports_once_and_splits_the_batch(runs) -> None:
    tmp, one, two = runs
    assert "16 = 8 x 2 accumulation x 1 process(es)" in one
    assert two.count("realign GP-D") == 1 and two.count("best top-1") == 1  # rank 0 alone prints
    assert "16 = 4 x 2 accumulation x 2 process(es)" in two
