"""Several processes (``torchrun --nproc-per-node N``): shard the utterances, gather one table on rank 0.

Invocation (``python -m bench`` serves the ``corpus``, ``bench`` and ``run`` groups, so the bench group is
named twice)::

    torchrun --standalone --nproc-per-node N -m bench bench run --models ... --device cuda --out RUN_DIR

Any entry point that calls :func:`bench.runner.run_benchmark` under torchrun shards the same way (so the main
job, ``-m bench run ...``, does too if it goes through the runner).  Rows: ``model_s``/``wall_s`` of the slowest
rank, ``rank_wall_s`` every rank's, ``audio_s`` and energy summed (a machine-wide meter counted once per host).

Detected from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); without it everything is a no-op
on one process.  Backend: NCCL for CUDA devices, gloo for CPU (the tests run 2 CPU processes with gloo).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from core.device import Device

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def init_from_env(devices: list[str]) -> DistContext:
    """Join the process group torchrun set up, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if any(Device.parse(d).is_cuda for d in devices) else "gloo"
    if backend == "nccl":
        import torch

        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    log.info("rank %d/%d (local %d), backend %s", rank, world, local, backend)
    return DistContext(rank, world, local, backend)
