"""Timing scenarios: what a job runs over, in which batches, with which weights, and where files are decoded.

``batched``     trained weights, length-sorted batches; every file decoded before the batches (``decode_s``).
``paper-loop``  trained weights, batch 1 in id order, each file decoded inside the loop (the paper's DataLoader).
``unseen``      trained weights, batched like ``batched``, but each timed repeat runs utterances whose lengths (so
                padded shapes) this process has not run before: what a server meets (bench/unseen.py).
``arch``        random weights (``arch-*`` specs), batched over generated audio shaped like dev-clean: timing
                only, no accuracy pass; a stated fraction of the workload on CPU.
The scenario's ``name`` is the row's ``scenario`` column.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

from bench.trackers import StageClock

PAPER_LOOP_SUFFIX = "@paper-loop"


@dataclass(frozen=True)
class Scenario:
    name: str
    weights: str = "trained"          # the row's ``weights``: trained | random
    uses_data: bool = True            # runs over --data (else over generated audio)
    decode_in_loop: bool = False      # file decoding timed inside the batch loop (batch 1, id order)

    def plan(self, tr: Any, durations: Sequence[float]) -> list[list[int]]:
        """The batches of one full pass (indices into the workload)."""
        if self.decode_in_loop:
            return [[i] for i in range(len(durations))]
        return tr.plan(durations)

    def workload(self, data_wl: Any, arch_wls: dict[str, Any], device: str) -> Any:
        return data_wl if self.uses_data else arch_wls[device]

    def workload_fraction(self, wl_full: Any) -> float:
        """Share of the full workload one pass times (below 1 only for generated audio on CPU)."""
        return 1.0 if self.uses_data else getattr(wl_full, "fraction", 1.0)

    def __str__(self) -> str:
        return self.name


BATCHED = Scenario("batched")
UNSEEN = Scenario("unseen")
PAPER_LOOP = Scenario("paper-loop", decode_in_loop=True)
ARCH = Scenario("arch", weights="random", uses_data=False)
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (BATCHED, UNSEEN, PAPER_LOOP, ARCH)}


def get(scenario: "str | Scenario") -> Scenario:
    """The scenario of that name (a Scenario is returned as is)."""
    if isinstance(scenario, Scenario):
        return scenario
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r} (expected one of {', '.join(SCENARIOS)})") from None


def for_spec(spec: str) -> Scenario:
    """An ``arch-*`` spec is a random-weight architecture; anything else is a trained model, batched."""
    return ARCH if spec.startswith("arch-") else BATCHED


def arch_fraction(requested: float | None, is_cuda: bool) -> float:
    """Generated-audio share: as asked, else all of it on a GPU and 1 % on a CPU (minutes, not hours)."""
    if requested is not None:
        return requested
    return 1.0 if is_cuda else 0.01


@dataclass
class PassResult:
    wall_s: float
    decode_s: float
    inputs_s: float
    model_s: float
    text_s: float
    model_s_cuda_events: float
    n_utts: int
    audio_s: float
    hyps: list[str] | None = None
    shapes: list | None = None        # padded input shape of each batch, in order (what oneDNN builds kernels for)

    @property
    def e2e_s(self) -> float:
        """decode + inputs + model + text; no decoding stage (NaN: generated audio) counts as zero."""
        decode = 0.0 if self.decode_s is None or math.isnan(self.decode_s) else self.decode_s
        return decode + self.inputs_s + self.model_s + self.text_s


def run_pass(tr: Any, wl: Any, scenario: "str | Scenario", keep_hyps: bool = False,
             audio_cache: list | None = None, batches: Sequence[Sequence[int]] | None = None) -> PassResult:
    """One pass of ``tr`` (a ``core.inference.Transcriber``) over workload ``wl`` in ``scenario``'s batches.

    Audio comes from ``audio_cache`` (generated audio: no decoding stage), else is decoded from the files:
    all before the batches, or inside the loop for a ``decode_in_loop`` scenario.
    """
    scenario = get(scenario)
    clock = StageClock(tr.device)
    t_start = time.perf_counter()
    decode_s = inputs_s = model_s = text_s = 0.0
    hyps: list[str] = [""] * len(wl)
    audios: list = [None] * len(wl)
    plan = scenario.plan(tr, wl.durations) if batches is None else [list(b) for b in batches]
    shapes: list[tuple[int, ...]] = []
    if audio_cache is None and not scenario.decode_in_loop:
        t = time.perf_counter()
        for i in sorted({i for b in plan for i in b}):
            audios[i] = wl.loader(i)
        decode_s = time.perf_counter() - t
    for idx in plan:
        if audio_cache is not None:
            batch_audio = [audio_cache[i] for i in idx]
        elif scenario.decode_in_loop:
            t = time.perf_counter()
            batch_audio = [wl.loader(i) for i in idx]
            decode_s += time.perf_counter() - t
        else:
            batch_audio = [audios[i] for i in idx]
        t = time.perf_counter()
        inputs = tr.make_inputs(batch_audio)
        shapes.append(tuple(getattr(getattr(inputs, "input_values", None), "shape", (len(idx), -1))))
        clock.sync()
        t1 = time.perf_counter()
        e0 = clock.event()
        logits = tr.forward(inputs)
        e1 = clock.event()
        clock.sync()
        t2 = time.perf_counter()
        if e0 is not None:
            clock.events.append((e0, e1))
        texts = tr.decode(logits, inputs)
        t3 = time.perf_counter()
        inputs_s += t1 - t
        model_s += t2 - t1
        text_s += t3 - t2
        for i, txt in zip(idx, texts):
            hyps[i] = txt
    wall = time.perf_counter() - t_start
    n = len({i for b in plan for i in b})
    audio_s = sum(wl.durations[i] for b in plan for i in b)
    if audio_cache is not None:
        decode_s = float("nan")  # audio was generated, not decoded: no decoding stage to report
    return PassResult(wall, decode_s, inputs_s, model_s, text_s, clock.events_s(), n, audio_s,
                      hyps if keep_hyps else None, shapes)
