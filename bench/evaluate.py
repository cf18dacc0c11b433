"""Accuracy only: one model over one or more datasets -> WER/CER by the suite's own scoring.

The quick check behind the model cards (``footprint bench eval``): no timing repeats, no energy; the
benchmark runner's accuracy pass does the same inside a full run.  Each result names the dataset's manifest
hash so a figure can be traced to the exact utterances it was measured on.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    model: str
    data: str
    manifest_hash: str
    n_utts: int
    audio_s: float
    wer: float       # fraction, corpus level
    cer: float
    ref_words: int
    model_s: float   # transcription time (decoding of the audio files excluded)
    threads: int
    batch_size: int

    @property
    def rtfx(self) -> float:
        return self.audio_s / self.model_s if self.model_s > 0 else float("nan")

    def line(self) -> str:
        return (f"{self.model} on {self.data}: WER {100 * self.wer:.2f} %, CER {100 * self.cer:.2f} % "
                f"({self.n_utts} utt., {self.ref_words} words, {self.audio_s / 60:.1f} min, "
                f"manifest {self.manifest_hash}; RTFx {self.rtfx:.1f}, batch {self.batch_size}, "
                f"{self.threads} threads)")


def set_threads(threads: int | None) -> None:
    """Before the model is built: a compiled variant's graphs are specialised to the thread count (Dynamo guards
    on it), and changing it afterwards recompiles them on the first batch (20-30 s for int8-inductor)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def make_transcriber(variant: Any, batch_size: int = 8):  # noqa: ANN201
    """The suite's greedy transcriber for a loaded :class:`core.variant.Variant`."""
    from core.inference import Transcriber

    return Transcriber(variant.model, do_normalize=variant.do_normalize, batch_size=batch_size, dtype=variant.dtype)


def transcribe_dataset(tr, spec: str, limit: int | None = None,  # noqa: ANN001
                       progress: bool = True) -> tuple:
    """(manifest, hypotheses, seconds in the model) for a data spec; decoding the audio files is not timed."""
    from core.data import resolve_data
    from core.data.librispeech import load_audio, read_subset

    manifest = read_subset(resolve_data(spec)).subset_of(limit)
    audios = [load_audio(u) for u in manifest.utterances]
    t0 = time.perf_counter()
    hyps = tr.transcribe(audios, progress=progress)
    return manifest, hyps, time.perf_counter() - t0


def evaluate_model(model: str, datasets: Sequence[str], loader: Callable[[str, str], Any], limit: int | None = None,
                   batch_size: int = 8, threads: int | None = None, progress: bool = True) -> list[EvalResult]:
    """WER/CER of the model spec ``model`` (loaded on the CPU by ``loader``) on each data spec."""
    import torch

    from core.scoring import score

    set_threads(threads)
    tr = make_transcriber(loader(model, "cpu"), batch_size)
    results = []
    for spec in datasets:
        manifest, hyps, model_s = transcribe_dataset(tr, spec, limit, progress)
        s = score([u.transcript for u in manifest.utterances], hyps)
        res = EvalResult(model, spec, manifest.content_hash, s.n_utts, manifest.total_seconds, s.wer, s.cer,
                         s.ref_words, model_s, torch.get_num_threads(), tr.batch_size)
        log.info("%s", res.line())
        results.append(res)
    return results


def write_json(results: Sequence[EvalResult], path: str | Path) -> None:
    from core.provenance import collect, now_iso

    rows = [dict(asdict(r), rtfx=r.rtfx) for r in results]
    doc = {"results": rows, "provenance": collect().as_dict(), "measured_at": now_iso(),
           "note": "greedy CTC, no language model; WER/CER by core.scoring (jiwer, LibriSpeech-normalised)"}
    Path(path).write_text(json.dumps(doc, indent=1))
