"""Benchmarks: one batched transcription pass per variant x device (model + inputs + CTC decoding; the audio is
decoded once beforehand).  Accuracy, size and energy in ``extra_info`` come from the runner's results."""
from __future__ import annotations

import os

import pytest

from bench.conftest import Case, bench_limit, cuda_available


def test_transcribe(benchmark, case: Case, bench_session) -> None:  # noqa: ANN001
    from core.device import Device

    if Device.parse(case.device).is_cuda and not cuda_available():
        pytest.skip("CUDA case: no CUDA GPU visible to torch on this machine")
    reason = bench_session.skipped.get((case.variant, case.device))
    if reason:
        pytest.skip(f"{case.variant} on {case.device} could not be loaded: {reason}")
    from bench.runner import run_pass

    data = os.environ.get("FOOTPRINT_BENCH_DATA", "embedded:dev-clean")
    tr, wl, audio = bench_session.ready(case, bench_limit(), data)
    benchmark.group = f"transcribe-{case.device}"
    benchmark.extra_info.update(bench_session.extra_info(case))
    benchmark.extra_info["timed"] = "inputs + model + CTC decoding over pre-decoded audio (batched)"
    rounds = int(os.environ.get("FOOTPRINT_BENCH_ROUNDS", "3"))
    warmup = int(os.environ.get("FOOTPRINT_BENCH_WARMUP", "1"))
    result = benchmark.pedantic(run_pass, args=(tr, wl, "batched"), kwargs={"audio_cache": audio},
                                rounds=rounds, warmup_rounds=warmup, iterations=1)
    assert result.n_utts == len(wl)
