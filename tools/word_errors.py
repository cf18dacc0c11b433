"""What a model gets wrong: counts of substitutions, deletions and insertions, and the most frequent of each.

The model card's error analysis (is the teacher limited by spelling, which more training fixes, or by homophones,
which only context or a language model can resolve?):

    python tools/word_errors.py --model embedded --data embedded:dev-clean --top 20

Greedy CTC with the suite's own transcriber; alignment and counts by jiwer, on the same normalised text as
``footprint bench eval``, so the totals match its WER.
"""
from __future__ import annotations

import argparse
import collections
import logging

log = logging.getLogger("word_errors")


def word_errors(refs: list[str], hyps: list[str]) -> tuple[object, dict[str, collections.Counter]]:
    import jiwer

    out = jiwer.process_words(refs, hyps)
    kinds: dict[str, collections.Counter] = {k: collections.Counter() for k in ("substitute", "delete", "insert")}
    for ref, hyp, chunks in zip(out.references, out.hypotheses, out.alignments):
        for c in chunks:
            if c.type == "substitute":
                kinds["substitute"].update(zip(ref[c.ref_start_idx:c.ref_end_idx], hyp[c.hyp_start_idx:c.hyp_end_idx]))
            elif c.type == "delete":
                kinds["delete"].update(ref[c.ref_start_idx:c.ref_end_idx])
            elif c.type == "insert":
                kinds["insert"].update(hyp[c.hyp_start_idx:c.hyp_end_idx])
    return out, kinds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="embedded")
    p.add_argument("--data", default="embedded:dev-clean")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    from bench.data import resolve_data
    from bench.data.librispeech import load_audio, read_subset
    from bench.inference import Transcriber
    from bench.text import normalize_transcript
    from compress.variants import load_variant

    if args.threads:
        torch.set_num_threads(args.threads)
    variant = load_variant(args.model)
    tr = Transcriber(variant.model, do_normalize=variant.do_normalize, batch_size=8, dtype=variant.dtype)
    manifest = read_subset(resolve_data(args.data))
    hyps = tr.transcribe([load_audio(u) for u in manifest.utterances], progress=True)
    pairs = [(normalize_transcript(u.transcript), normalize_transcript(h)) for u, h in zip(manifest.utterances, hyps)]
    pairs = [(r, h) for r, h in pairs if r]  # as bench.scoring: jiwer rejects empty references
    out, kinds = word_errors([r for r, _ in pairs], [h for _, h in pairs])
    n = sum(len(r) for r in out.references)
    log.info("%s on %s (manifest %s): %d words, WER %.2f %%: %d substitutions, %d deletions, %d insertions",
             args.model, args.data, manifest.content_hash, n, 100 * out.wer, out.substitutions, out.deletions,
             out.insertions)
    for kind, counts in kinds.items():
        top = ", ".join(f"{' -> '.join(k) if isinstance(k, tuple) else k} x{v}"
                        for k, v in counts.most_common(args.top))
        log.info("most frequent (%s): %s", kind, top)


if __name__ == "__main__":
    main()
