"""The NVML total-energy counter of one GPU (Volta and newer): a measurement of the whole board."""
from __future__ import annotations

from bench.energy.base import CounterMeter, MeterContext, MeterUnavailable, register_meter


@register_meter
class NvmlMeter(CounterMeter):
    """``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load) for one GPU index.

    The index is NVML's; under ``CUDA_VISIBLE_DEVICES`` the visible CUDA device is matched by UUID.
    """

    name = "nvml"
    scope = "device"

    def __init__(self, cuda_index: int = 0) -> None:
        super().__init__()
        self.cuda_index = cuda_index
        self._nvml = None
        self._handle = None
        self.gpu_name = ""

    @classmethod
    def from_context(cls, ctx: MeterContext) -> "NvmlMeter":
        if ctx.kind != "cuda":
            raise MeterUnavailable(f"NVML measures GPUs; device {ctx.device} is not one")
        return cls(cuda_index=ctx.index)

    def open(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise MeterUnavailable("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML did not initialise ({exc}); no NVIDIA driver visible") from None
        self._nvml = pynvml
        handle = None
        uuid = _torch_uuid(self.cuda_index)
        if uuid:
            try:
                handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
            except pynvml.NVMLError:
                handle = None
        if handle is None:
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(self.cuda_index)
            except pynvml.NVMLError as exc:
                raise MeterUnavailable(f"GPU {self.cuda_index}: {exc}") from None
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except pynvml.NVMLError as exc:
            raise MeterUnavailable(f"GPU {self.cuda_index}: total-energy counter unsupported ({exc}); "
                                   "it needs a Volta or newer GPU") from None
        self._handle = handle
        name = pynvml.nvmlDeviceGetName(handle)
        self.gpu_name = name.decode() if isinstance(name, bytes) else str(name)

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down twice is harmless
                pass
            self._nvml = None

    def read(self) -> dict[str, float]:
        mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return {f"gpu{self.cuda_index}": mj / 1000.0}

    def describe(self) -> str:
        return (f"NVML nvmlDeviceGetTotalEnergyConsumption, GPU {self.cuda_index} ({self.gpu_name}); whole board, "
                "all processes on it; host CPU and RAM not included")


def _torch_uuid(index: int) -> str | None:
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # noqa: BLE001 - torch without CUDA, or older torch without .uuid
        return None
    return uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
