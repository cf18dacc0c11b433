"""One device type: parse ``cpu`` / ``cuda`` / ``cuda:N`` once, ask it what it is.

Torch is imported only inside the methods that need it, so parsing a device never loads torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import FootprintError

KINDS = ("cpu", "cuda")


@dataclass(frozen=True)
class Device:
    kind: str                 # "cpu" | "cuda"
    index: int | None = None  # None: the current device (cuda) or the only one (cpu)

    @classmethod
    def parse(cls, spec: "str | Device | Any") -> "Device":
        """``cpu``, ``cuda``, ``cuda:1`` (or a ``torch.device``); anything else is a one-line FootprintError."""
        if isinstance(spec, Device):
            return spec
        text = str(spec)
        kind, sep, idx = text.partition(":")
        if kind not in KINDS:
            raise FootprintError(f"--device {text}: expected cpu or cuda")
        if not sep:
            return cls(kind)
        if not idx.isdigit():
            raise FootprintError(f"--device {text}: expected {kind} or {kind}:N")
        return cls(kind, int(idx))

    @classmethod
    def resolve(cls, spec: "str | Device | Any") -> "Device":
        """Like :meth:`parse`, and ``auto`` is the first GPU when one is visible, else the CPU."""
        if str(spec) == "auto":
            import torch

            return cls("cuda") if torch.cuda.is_available() else cls("cpu")
        return cls.parse(spec)

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    def for_local_rank(self, local_rank: int, distributed: bool) -> "Device":
        """Under torchrun a bare ``cuda`` means this rank's GPU; an explicit index is kept."""
        if self.is_cuda and self.index is None and distributed:
            return Device("cuda", local_rank)
        return self

    def torch(self) -> Any:
        import torch

        return torch.device(str(self))

    def name(self) -> str:
        """The row's ``device_name``: the GPU's name, or the CPU model."""
        from core.provenance import cpu_model, gpu_name

        return gpu_name(self.index or 0) if self.is_cuda else cpu_model()

    def check_available(self) -> None:
        if not self.is_cuda:
            return
        import torch

        if not torch.cuda.is_available():
            raise FootprintError(f"--device {self}: no CUDA GPU visible (torch {torch.__version__}"
                                 f"{', a CPU-only build' if torch.version.cuda is None else ''}; check nvidia-smi "
                                 "and CUDA_VISIBLE_DEVICES)")


def check_devices(specs: "list[str] | tuple[str, ...]") -> list[Device]:
    """Parse and check every ``--device``; the first problem is raised as today's one-line message."""
    devices = [Device.parse(s) for s in specs]
    for d in devices:
        d.check_available()
    return devices
