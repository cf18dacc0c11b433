"""What a model gets wrong: counts of substitutions, deletions and insertions, and the most frequent of each.

The model card's error analysis (is the teacher limited by spelling, which more training fixes, or by homophones,
which only context or a language model can resolve?):

    python tools/word_errors.py --model embedded --data embedded:dev-clean --top 20

Greedy CTC with the suite's own transcriber; alignment and counts by ``core.scoring.word_errors`` (jiwer), on the
same normalised text as ``footprint bench eval``, so the totals match its WER.
"""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger("word_errors")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded")
    p.add_argument("--data", default="embedded:dev-clean")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from bench.evaluate import make_transcriber, set_threads, transcribe_dataset
    from compress.variants import load_variant
    from core.scoring import wer_interval, word_errors

    set_threads(args.threads)
    manifest, hyps, _ = transcribe_dataset(make_transcriber(load_variant(args.model)), args.data)
    out, kinds = word_errors([u.transcript for u in manifest.utterances], hyps)
    n = sum(len(r) for r in out.references)
    log.info("%s on %s (manifest %s): %d words, WER %.2f %%: %d substitutions, %d deletions, %d insertions",
             args.model, args.data, manifest.content_hash, n, 100 * out.wer, out.substitutions, out.deletions,
             out.insertions)
    low, high = wer_interval(out)
    log.info("95 %% bootstrap interval of the WER over the %d utterances: %.2f-%.2f %%", len(out.references),
             100 * low, 100 * high)
    for kind, counts in kinds.items():
        top = ", ".join(f"{' -> '.join(k) if isinstance(k, tuple) else k} x{v}"
                        for k, v in counts.most_common(args.top))
        log.info("most frequent (%s): %s", kind, top)


if __name__ == "__main__":
    main()
