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
from dataclasses import dataclass, field
from typing import Any

from core.device import Device

log = logging.getLogger(__name__)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    local_world_size: int = 1
    device: Any = None  # the torch.device this rank computes on, where the caller chose one
    owns_group: bool = field(default=False, repr=False)  # this context created the process group: close() ends it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            if dist.get_backend() == "nccl":  # without device_ids NCCL guesses the GPU and may hang
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def all_reduce(self, t: Any, op: str = "sum") -> Any:
        """Sum (``op="sum"``) or maximum (``"max"``) of tensor ``t`` over the ranks, in place; returns ``t``."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return t

    def wrap_ddp(self, model: Any, find_unused_parameters: bool = False) -> Any:
        """``model`` in DistributedDataParallel when there are several ranks, else ``model`` itself."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = self.device is not None and getattr(self.device, "type", "") == "cuda"
        return DistributedDataParallel(model, device_ids=[self.local_rank] if on_gpu else None,
                                       find_unused_parameters=find_unused_parameters)

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

    def close_own(self) -> None:
        if self.owns_group:
            self.close()


def init_from_env(devices: list[str], timeout_minutes: float | None = None) -> DistContext:
    """Join the process group torchrun set up, if any (NCCL when any device is CUDA, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    backend = "nccl" if any(Device.parse(d).is_cuda for d in devices) else "gloo"
    if backend == "nccl":
        import torch

        if local >= torch.cuda.device_count():
            from core.errors import FootprintError

            raise FootprintError(f"{local_world} ranks on this node but {torch.cuda.device_count()} GPU(s); "
                                 "use one rank per GPU, or --device cpu")
        torch.cuda.set_device(local)
    owns = False
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {}
        if timeout_minutes is not None:
            import datetime

            kwargs["timeout"] = datetime.timedelta(minutes=timeout_minutes)
        dist.init_process_group(backend=backend, **kwargs)
        owns = True
    log.info("rank %d/%d (local %d), backend %s", rank, world, local, backend)
    return DistContext(rank, world, local, backend, local_world_size=local_world, owns_group=owns)
