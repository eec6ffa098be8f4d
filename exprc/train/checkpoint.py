"""Checkpoints of a re-alignment run, written whole or not at all, and read back to continue exactly.

One file, `checkpoint.pt` in the run directory, rewritten every N optimizer steps and at each epoch's end: the
student's state dict (the unwrapped module's, so a run of one process resumes a torchrun run and back), AdamW's
and the GradScaler's state, the position (epoch, step in the epoch, which fixes the sampler's position), the
random generators of every process, the log so far, the configuration, and the run's identity (model, weights,
norm kind, expressions, variant, batch, seed, data size). It is written to a temporary file beside it and renamed,
so a killed run leaves the previous checkpoint intact. Read with `torch.load(weights_only=True)`: plain tensors
and containers only, no pickled code.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic_write import atomic_write
from ..errors import ExprcError

FORMAT = "exprc.realign-checkpoint/1"
CHECKPOINT = "checkpoint.pt"


@dataclass
class Position:
    """Where a run is: `epoch` epochs done, `step` optimizer steps into the next one, `global_step` in all."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0


def rng_state(device: torch.device) -> dict:
    """This process's generators: Python's, NumPy's, torch's CPU one and (on a GPU) its device's."""
    py = random.getstate()
    np_state = np.random.get_state(legacy=False)
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)), "pos": np_state["state"]["pos"],
                  "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]},
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def set_rng_state(state: dict, device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": n["key"].numpy().astype(np.uint32),
                                                              "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.random.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def save(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler, position: Position,
         log: dict, config: dict, identity: dict, rng: list[dict]) -> None:
    """Write the checkpoint atomically (`log`: {"original": ..., "epochs": [...]}; `rng`: every process's
    generators, in rank order)."""
    payload = {
        "format": FORMAT,
        "identity": identity,
        "config": config,
        "position": {"epoch": position.epoch, "step": position.step, "global_step": position.global_step},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng,
        "log": log,
    }
    with atomic_write(path, binary=True) as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())


def load(path: str | Path) -> dict:
    """A checkpoint's contents (tensors on the CPU); an ExprcError for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise ExprcError("no checkpoint to resume from (a run writes checkpoint.pt into its --output)",
                         where=str(path))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: pickle, zip and torch errors alike
        raise ExprcError(f"cannot read the checkpoint ({type(e).__name__}: {e})", where=str(path)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ExprcError(f"not an exprc realign checkpoint (expected format {FORMAT})", where=str(path))
    return payload


def check_identity(payload: dict, identity: dict, path: str | Path) -> None:
    """Refuse a checkpoint of another run: another model, weights, norm kind or layer file, variant, batch..."""
    saved = payload["identity"]
    diffs = [f"{k} {_show(saved.get(k))} there, {_show(v)} here" for k, v in identity.items() if saved.get(k) != v]
    if diffs:
        raise ExprcError(f"this checkpoint belongs to another run: {'; '.join(diffs)}. Resume with the options it "
                         "was started with, or start a new run in another --output", where=str(path))


def _show(value) -> str:
    text = repr(value)
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        text = f"sha256 {value[:12]}..."  # a digest: layers, weights
    return text


def restore(payload: dict, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler, rank: int,
            world_size: int, device: torch.device, path: str | Path) -> tuple[Position, dict, bool]:
    """Load the checkpoint's states into `model`, `optimizer`, `scaler` and this process's generators; return the
    position, the log and whether the generators were restored (not when the number of processes changed)."""
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise ExprcError(f"the checkpoint does not fit this model or optimizer: {str(e).splitlines()[0]}",
                         where=str(path)) from None
    if scaler is not None and scaler.is_enabled() and payload["scaler"] is not None:
        scaler.load_state_dict(payload["scaler"])
    rng = payload["rng"]
    exact = len(rng) == world_size
    if exact:
        set_rng_state(rng[rank], device)
    p = payload["position"]
    log = {"original": payload["log"]["original"], "epochs": list(payload["log"]["epochs"])}
    return Position(p["epoch"], p["step"], p["global_step"]), log, exact
