"""One process or many: torch.distributed as `torchrun` sets it up (NCCL on GPUs, gloo on CPUs), nothing home-made.

Under `torchrun` the environment holds RANK, WORLD_SIZE and LOCAL_RANK; `init` joins the process group and picks
this process's device (cuda:LOCAL_RANK). A plain `exprc realign` is a world of one, with no process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ExprcError


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init(device: str | None) -> World:
    """This process's place in the run; joins the process group when started by torchrun with more than one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ExprcError(f"--device {device}: CUDA is not available here")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return World(rank, size, local_rank, dev)


def finish(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def sum_across(world: World, values: list[float]) -> list[float]:
    """Element-wise sum of `values` over all processes (float64; counts stay exact)."""
    if not world.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather_objects(world: World, obj) -> list:
    """`obj` of every process, in rank order (every process gets the list)."""
    if not world.distributed:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def agree(world: World, ok: bool, message: str) -> None:
    """Raise `ExprcError(message)` on every process if any process is not `ok` (so none waits forever)."""
    if world.distributed:
        flag = torch.tensor([0 if ok else 1], device=world.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        ok = flag.item() == 0
    if not ok:
        raise ExprcError(message)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
