"""A run killed mid-epoch (SIGKILL, no chance to clean up) and resumed ends exactly where an uninterrupted run ends;
a checkpoint of another run is refused with a clear error.

GP-F with what makes exactness hard: DeiT augmentation (RandAugment, random erasing), stochastic depth 0.1 (the
global generator), checkpoints mid-epoch, a loader worker in the killed run and none in the others.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from test_realign_support import tiny_config, write_image_folder, write_layers

from exprc.cli import main
from exprc.train import realign

KILL_AT = 7  # global step; 4 steps an epoch, a checkpoint every 3: the last one before the kill is step 6
KILLER = f"""
import json, os, signal, sys
from exprc.train import RealignConfig, realign

def on_step(info):
    if info.global_step == {KILL_AT}:
        os.kill(os.getpid(), signal.SIGKILL)

realign(RealignConfig.from_dict(json.loads(sys.argv[1])), on_step=on_step)
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    return tmp, write_image_folder(tmp / "data", train_per_class=8, val_per_class=2), write_layers(tmp / "layers.json")


def config(tmp, data, layers, name: str, **kw):
    return tiny_config(tmp / name, data, norm="gp", layers=str(layers), variant="F", batch_size=8, epochs=2,
                       lr=3e-3, checkpoint_every=3, seed=5, **kw)


def flags(cfg) -> list[str]:
    """The command line of `cfg` (what --resume is given)."""
    out = ["--model", cfg.model, "--random-init", "--layers", cfg.layers, "--variant", cfg.variant,
           "--data", cfg.data, "--batch-size", str(cfg.batch_size), "--epochs", str(cfg.epochs), "--lr", str(cfg.lr),
           "--checkpoint-every", str(cfg.checkpoint_every), "--seed", str(cfg.seed), "--workers", "0",
           "--no-eval-original", "--quiet", "-o", cfg.output]
    for k, v in cfg.model_args.items():
        out += ["--model-arg", f"{k}={v}"]
    return out


def test_killed_and_resumed_run_ends_with_the_same_parameters(setup) -> None:
    tmp, data, layers = setup
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = config(tmp, data, layers, "killed", workers=1)
    r = subprocess.run([sys.executable, "-c", KILLER, json.dumps(killed.to_dict())], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == -signal.SIGKILL, r.stderr
    mid = torch.load(tmp / "killed" / "checkpoint.pt", weights_only=True)
    assert mid["position"] == {"epoch": 1, "step": 2, "global_step": 6}  # mid-epoch
    assert not list((tmp / "killed").glob("*.tmp"))  # nothing half-written left behind
    r = subprocess.run([sys.executable, "-m", "exprc", "realign", *flags(killed), "--resume"], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    resumed = torch.load(tmp / "killed" / "checkpoint.pt", weights_only=True)

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = realign(config(tmp, data, layers, "whole", workers=0))
    finally:
        torch.set_num_threads(saved)
    reference = torch.load(tmp / "whole" / "checkpoint.pt", weights_only=True)
    assert resumed["position"] == reference["position"] == {"epoch": 2, "step": 0, "global_step": 8}
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    for a, b in zip(resumed["optimizer"]["state"].values(), reference["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val_loss"] for r in resumed["log"]["epochs"]] == [r["val_loss"] for r in whole.epochs]


def test_checkpoint_of_another_layer_file_is_refused(setup, tmp_path, capsys) -> None:
    tmp, data, layers = setup
    first = config(tmp_path, data, layers, "run", max_steps=1)
    assert main(["realign", *flags(first), "--max-steps", "1"]) == 0
    other = write_layers(tmp_path / "other.json", {n: "0.5*x" for n in json.loads(layers.read_text())["layers"]})
    capsys.readouterr()
    args = flags(first)
    args[args.index("--layers") + 1] = str(other)
    assert main(["realign", *args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "layers sha256" in err, err
    args = flags(first)
    args[args.index("num_heads=2")] = "num_heads=4"  # the same norms, another model
    assert main(["realign", *args, "--resume"]) == 2
    assert "model_args" in capsys.readouterr().err


def test_existing_run_needs_resume_and_bad_checkpoints_are_named(setup, tmp_path, capsys) -> None:
    tmp, data, layers = setup
    first = config(tmp_path, data, layers, "run", max_steps=1)
    assert main(["realign", *flags(first), "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(["realign", *flags(first), "--max-steps", "1"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["realign", *flags(first), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot read the checkpoint" in err and "Traceback" not in err
    assert main(["realign", *flags(config(tmp_path, data, layers, "none")), "--resume"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
