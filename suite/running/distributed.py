"""Data-parallel runs under `torchrun`: torch.distributed does the work.

`torchrun --nproc_per_node=N run_all.py ...` sets RANK / WORLD_SIZE; each
rank trains on its slice of every global batch (see BatchSource.batches),
DDP averages gradients, and rank 0 writes the record. Stop decisions are
taken on rank 0 and broadcast, so no rank waits in a collective alone.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def init_from_env(device: torch.device) -> tuple[int, int]:
    """(rank, world_size); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def wrap(model: nn.Module, ctx) -> nn.Module:
    if ctx.world_size <= 1:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def agree(decision: str | None, ctx) -> str | None:
    """Rank 0's decision, on every rank."""
    if ctx.world_size <= 1:
        return decision
    box = [decision]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx) -> None:
    if ctx.world_size > 1:
        dist.barrier()


def wait_for_rank_zero() -> None:
    """Hold every rank until rank 0 has written the suite's tables and report. torchrun stops all ranks
    as soon as one exits with an error status, so a rank ending with a failed run would cut rank 0 off
    mid-report. A group already broken (a rank gone) has nothing to wait for."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except RuntimeError:  # DistBackendError and gloo's closed connections are RuntimeErrors
            pass
