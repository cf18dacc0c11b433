"""Whether Inductor can compile on this machine, and the suite's persistent compile cache: where Inductor's FX graph
and AOTAutograd caches, its compiled C++ kernels and the AOTInductor artefacts (:mod:`compress.methods.aoti`) live,
and whether a compilation found what it needed there.

Kept apart from ``compiled.py`` so that every module that compiles (``compiled``, ``int8_inductor``, ``aoti``,
``encoder_artefact``, ``front_end``) can use it without importing another's code.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


def compile_available(device: str | None = None) -> bool:
    """Whether Inductor can compile here for ``device``: on ``cpu`` it generates C++, so a C++ compiler (the one
    Inductor looks for: ``$CXX`` or g++) is required whatever CUDA says; on ``cuda`` it generates Triton kernels.
    ``None``: either (a recipe that runs on both).  A CPU-only recipe (int8-inductor) asks for ``cpu``: on a GPU
    machine without a compiler it would otherwise be offered and then fail while building."""
    from torch._inductor import config as inductor_config

    cxx = inductor_config.cpp.cxx
    search = cxx if isinstance(cxx, (list, tuple)) else (cxx,)
    has_cxx = any(c and shutil.which(c) for c in search)  # None: a conda g++ install, off unless asked for
    if device == "cpu":
        return bool(has_cxx)
    if device == "cuda":
        return torch.cuda.is_available()
    return bool(has_cxx) or torch.cuda.is_available()


def compile_missing() -> str:
    """Why ``compile`` cannot run here ("" when it can): what the main job says when it leaves a chain out."""
    return "" if compile_available() else "no C++ compiler for torch.compile (g++ or $CXX)"


def compile_cache_dir() -> Path:
    """The suite's persistent compile cache: Inductor's FX graph and AOTAutograd caches and the compiled C++ kernels,
    under the suite's cache folder (``$W2V_FOOTPRINT_CACHE``, default ``~/.cache/w2v-footprint``), one folder per
    torch version (a cache entry is only valid for the torch that wrote it)."""
    from core.data.synth.corpus import cache_root

    return cache_root() / "compile" / f"torch-{torch.__version__.split('+')[0]}"


def use_compile_cache() -> str:
    """Point Inductor's on-disk caches at :func:`compile_cache_dir` unless the user chose a folder: torch's
    default is under /tmp (gone at a reboot), ours is shared by the runner's memory child, a second run and a
    deployer's ``load_variant``, so they load compiled graphs instead of compiling them again.  Returns the folder."""
    current = os.environ.get(CACHE_ENV)
    if current:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        # torch writes its own default into the environment once it has used it: that is not a user's choice
        if os.path.abspath(current) != os.path.abspath(default_cache_dir()):
            return current
    folder = compile_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_ENV] = str(folder)
    return str(folder)


def _cache_counts() -> tuple[int, int]:
    """(graphs compiled, of them loaded whole from the FX graph / AOTAutograd caches) so far in this process."""
    from torch._dynamo.utils import counters

    ind, aot = counters["inductor"], counters["aot_autograd"]
    hits = ind["fxgraph_cache_hit"] + aot["autograd_cache_hit"]
    return hits + ind["fxgraph_cache_miss"] + ind["fxgraph_cache_bypass"], hits


def _files_in(folder: str) -> int:
    """Compiled kernels and cache entries in ``folder``; not the Python wrappers (a frozen graph's wrapper is written
    again at each build, cheaply) nor lock files."""
    return sum(not f.endswith((".py", ".lock")) for _, _, files in os.walk(folder) for f in files)


class CacheProbe:
    """Around a compilation: ``label`` is "cold" when it wrote anything to the compile cache (a graph or a kernel
    compiled anew), "warm" when it compiled graphs but found all of it there, "" when nothing was compiled.

    The files, not only Inductor's hit counters, decide: a graph with frozen weights (int8-inductor) bypasses the
    FX graph and AOTAutograd caches (its prepacked oneDNN weights do not pickle), yet its C++ kernels are cached
    by their source, and compiling them is most of the build: a second build that finds them compiles no kernel."""

    def __enter__(self) -> CacheProbe:
        self.folder = use_compile_cache()
        self._before = (_cache_counts(), _files_in(self.folder))
        self.label = ""
        return self

    def __exit__(self, *exc: object) -> None:
        (graphs0, hits0), files0 = self._before
        graphs, hits = _cache_counts()
        written = _files_in(self.folder) - files0
        self.label = "cold" if written > 0 else ("warm" if graphs > graphs0 or hits > hits0 else "")
