"""A compiled graph kept on disk as an AOTInductor package, so a fresh process loads it instead of compiling it.

Why: a graph compiled with frozen weights (``int8-inductor``: oneDNN's int8 GEMMs need their weights prepacked at
compile time) bypasses Inductor's FX graph and AOTAutograd caches (torch 2.13: "Cannot cache a graph with freezing
enabled"), so every build in a fresh process (the runner's memory child, a later run, a deployer) traced, froze and
lowered the graph again: 25-37 s for the teacher, against ~2-3 s to load the teacher itself.  AOTInductor compiles
an exported program (dynamic batch and length) ahead of time into one ``.pt2`` file, frozen and prepacked weights
included; loading it is a ``dlopen`` and a constant copy.

An artefact is a folder ``<compile cache>/aoti/<key>`` written whole or not at all (built in a temporary folder,
then renamed).  Its key hashes everything its code and constants depend on (:func:`machine_key`): the graph's
tensors and configuration (given by the method), the torch / torchao / transformers versions, the source of the
method's modules, the CPU's instruction set as Inductor and oneDNN see it (a prepacked oneDNN weight's layout
depends on it, AMX or not), the thread count (Inductor writes it into the generated OpenMP code) and the Inductor
settings that change the generated code (:data:`CODEGEN_CONFIG`: a build made while profiling is not reused).  An
artefact that cannot be read is reported in one line and built again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

FORMAT = 1  # bump when what is stored in an artefact changes
PACKAGE = "encoder.pt2"
META = "meta.json"
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "ONEDNN_DEFAULT_FPMATH_MODE")
# Inductor settings that change the generated code without changing the graph: a build made while profiling
# (record-function calls in every kernel) or debugging (no optimisation) must not be loaded as the suite's own
CODEGEN_CONFIG = ("cpp.enable_kernel_profile", "aot_inductor.debug_compile", "aot_inductor.compile_wrapper_opt_level",
                  "cpp.simdlen")
MAX_FRAMES = 100_000  # an exported encoder's bound on its length (frames, 50 per second of audio: 33 min)


class ArtefactError(Exception):
    """An artefact that exists but cannot be used (unreadable, from another build, wrong contents)."""


def artefacts_dir() -> Path:
    """Where artefacts live: beside Inductor's caches, in the compile cache folder in effect."""
    from compress.methods.compile_cache import use_compile_cache

    return Path(use_compile_cache()) / "aoti"


def tensors_digest(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's parameters and buffers."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict(keep_vars=False).items()):
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            continue
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _sources_digest(modules: tuple[str, ...]) -> str:
    import importlib

    h = hashlib.sha256()
    for name in modules:
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.hexdigest()[:16]


def machine_key() -> dict[str, Any]:
    """What a compiled artefact's code and prepacked weights depend on, besides the graph itself."""
    import transformers
    from torch._inductor import config as inductor_config
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    try:
        import torchao

        torchao_version = torchao.__version__
    except Exception:  # noqa: BLE001 - torchao absent or broken: part of the key, not an error here
        torchao_version = ""
    amx = getattr(torch._C._cpu, "_is_amx_tile_supported", lambda: None)()
    codegen = inductor_config.get_config_copy()
    return {"format": FORMAT, "torch": torch.__version__, "torchao": torchao_version,
            "transformers": transformers.__version__, "vec_isa": str(pick_vec_isa()),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "amx": amx,
            "env": {k: os.environ.get(k, "") for k in ISA_ENV}, "threads": torch.get_num_threads(),
            "inductor": {k: codegen.get(k) for k in CODEGEN_CONFIG}}


def artefact_key(graph: dict[str, Any], modules: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The folder name and the full description it hashes: ``graph`` (the method's part) + :func:`machine_key` +
    the source of ``modules`` (the code that shapes the graph)."""
    parts = {"graph": graph, "machine": machine_key(), "sources": _sources_digest(modules)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32], parts


def find(key: str) -> Path | None:
    folder = artefacts_dir() / key
    return folder if (folder / META).is_file() else None


def read_meta(folder: Path, parts: dict[str, Any]) -> dict[str, Any]:
    """The artefact's description; :class:`ArtefactError` where it is unreadable or describes another build."""
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"{folder / META}: unreadable ({exc})") from exc
    if json.loads(json.dumps(meta.get("key"), sort_keys=True, default=str)) != json.loads(
            json.dumps(parts, sort_keys=True, default=str)):
        raise ArtefactError(f"{folder}: built for another graph, machine or version (stale)")
    if not (folder / PACKAGE).is_file():
        raise ArtefactError(f"{folder / PACKAGE}: missing")
    return meta


def first_line(exc: BaseException) -> str:
    """An exception's first line (a C++ build's log can run to pages): for one-line warnings."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def load_package(folder: Path) -> Any:
    """The compiled graph, callable like the module that was exported."""
    try:
        return torch._inductor.aoti_load_package(str(folder / PACKAGE))
    except Exception as exc:  # noqa: BLE001 - any failure to load means: build it again
        raise ArtefactError(f"{folder / PACKAGE}: cannot be loaded ({type(exc).__name__}: "
                            f"{first_line(exc)})") from exc


def build(key: str, parts: dict[str, Any], exported: Any, inductor_configs: dict[str, Any],
          write_extra: Callable[[Path], dict[str, Any]]) -> Path:
    """Compile ``exported`` (an ``ExportedProgram``) with AOTInductor into a new artefact folder and return it.
    ``write_extra(tmp)`` writes the method's own files there and returns what its ``meta.json`` adds."""
    from compress.methods.compile_cache import use_compile_cache

    use_compile_cache()  # Inductor's kernels and AOTInductor's build folders go there too
    root = artefacts_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    tmp = root / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        t0 = time.perf_counter()
        with torch.no_grad():  # freezing (oneDNN weight prepacking) runs only without autograd
            torch._inductor.aoti_compile_and_package(exported, package_path=str(tmp / PACKAGE),
                                                     inductor_configs=inductor_configs)
        meta = {"key": parts, "aoti_compile_s": round(time.perf_counter() - t0, 2), **write_extra(tmp)}
        (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        if final.exists():  # stale or unreadable: replaced whole
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:  # another process wrote it meanwhile: theirs is as good
            if not (final / META).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@dataclass
class Loaded:
    """An artefact ready to call: the package, its folder, "loaded" | "built", the compile cache's label ("warm" when
    loaded), and the seconds building (0 when loaded) and loading took."""

    package: Any
    folder: Path
    state: str
    cache_label: str
    build_s: float
    load_s: float


def load_or_build(key: str, parts: dict[str, Any], build_folder: Callable[[], Path], name: str) -> Loaded:
    """The artefact under ``key``, loaded; built first by ``build_folder()`` (which returns its folder) where none is
    cached, or where the cached one cannot be used (one warning naming ``name``).  Raises what building or loading
    raised."""
    from compress.methods.compile_cache import CacheProbe

    folder = find(key)
    if folder is not None:
        try:
            read_meta(folder, parts)
            t0 = time.perf_counter()
            package = load_package(folder)
            return Loaded(package, folder, "loaded", "warm", 0.0, time.perf_counter() - t0)
        except ArtefactError as exc:
            log.warning("%s: compiled artefact not used, building it again: %s", name, exc)
    t0 = time.perf_counter()
    with CacheProbe() as probe:
        folder = build_folder()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    package = load_package(folder)
    return Loaded(package, folder, "built", probe.label or "cold", build_s, time.perf_counter() - t0)


def package_source(folder: Path) -> str:
    """The C++ AOTInductor generated for an artefact (wrapper and kernels), as kept in its package."""
    with zipfile.ZipFile(folder / PACKAGE) as z:
        return "\n".join(z.read(n).decode(errors="replace") for n in z.namelist() if n.endswith(".cpp"))


# -- an exported Wav2Vec2 encoder: what is exported, its dynamic shapes, how it is called ---------------------------
class LastHiddenState(nn.Module):
    """What is exported of a ``Wav2Vec2Encoder``: hidden states (and the frame mask) in, the last hidden state out."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(hidden_states, attention_mask=attention_mask).last_hidden_state


def encoder_example(hidden: int, with_mask: bool, dtype: torch.dtype = torch.float32,
                    max_frames: int = MAX_FRAMES) -> tuple[tuple[torch.Tensor, ...], tuple[dict[int, Any], ...]]:
    """An example input for exporting an encoder and its dynamic shapes (batch and length).  Exported with the
    padding mask (layer-norm front ends), the graph fails on a batch of one (torch 2.13: an index out of bounds
    inside its masking code), so the batch starts at 2 there and :func:`call_encoder` runs a batch of one as two."""
    example = (torch.randn(3, 137, hidden, dtype=dtype),) + ((torch.ones(3, 137, dtype=torch.bool),) if with_mask
                                                             else ())
    batch = torch.export.Dim("batch", min=2 if with_mask else 1, max=4096)
    frames = torch.export.Dim("frames", min=2, max=max_frames)
    return example, ({0: batch, 1: frames},) + (({0: batch, 1: frames},) if with_mask else ())


def export_encoder(encoder: nn.Module, model_config: Any, example: tuple[torch.Tensor, ...],
                   shapes: tuple[dict[int, Any], ...], attention_implementation: str) -> torch.export.ExportedProgram:
    """``encoder``'s last hidden state exported for a compiled recipe (non-strict, the shapes of
    :func:`encoder_example`), with ``attention_implementation``'s attention (:mod:`compress.methods.attention`) and
    the positional conv as :mod:`compress.methods.positional_conv` runs it; the encoder is left as it was."""
    from compress.methods import attention, positional_conv

    with torch.no_grad(), attention.exported_with(model_config, attention_implementation), \
            positional_conv.exported_channels_last(encoder):
        return torch.export.export(LastHiddenState(encoder), example, dynamic_shapes=shapes, strict=False)


def call_encoder(run: Callable[..., torch.Tensor], hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None, with_mask: bool, name: str) -> torch.Tensor:
    """Call an exported encoder ``run`` as the model calls its encoder: the mask it was exported with (all frames
    valid when the model passes none), a batch of one as two copies of itself where the mask requires it."""
    from core.errors import FootprintError

    if attention_mask is not None and not with_mask:
        raise FootprintError(f"{name}: the encoder was exported without an attention mask (a group-norm front end's "
                             "model) and called with one")
    if attention_mask is None and with_mask:  # no padding: all frames valid, as the model would do
        attention_mask = torch.ones(hidden_states.shape[:2], dtype=torch.bool, device=hidden_states.device)
    single = hidden_states.shape[0] == 1 and with_mask
    if single:
        hidden_states = hidden_states.expand(2, -1, -1).contiguous()
        attention_mask = attention_mask.expand(2, -1) if attention_mask is not None else None
    out = run(*((hidden_states,) if attention_mask is None else (hidden_states, attention_mask.bool())))
    return out[:1] if single else out
