"""``footprint corpus``: synthesise the embedded corpus, check a LibriSpeech subset, download LibriSpeech."""
from __future__ import annotations

import argparse


def register_corpus(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="speech corpora: synthesise, check, download")
    csub = p.add_subparsers(dest="corpus_cmd", metavar="CMD")
    csub.required = True

    s = csub.add_parser("synth", help="write the offline synthetic corpus in LibriSpeech layout")
    s.add_argument("--out", default=None, help="root folder (default: the user cache, keyed by the parameters)")
    s.add_argument("--hours-train", type=float, default=None, help="hours of train-clean audio")
    s.add_argument("--dev-utterances", type=int, default=None, help="utterances in dev-clean and in dev-other")
    s.add_argument("--seed", type=int, default=0, help="changes speakers and sampling, never the held-out sentences")
    s.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    s.add_argument("--subsets", default="train-clean,dev-clean,dev-other")

    def _synth(args: argparse.Namespace) -> int:
        from core.data.synth.corpus import cli_synth

        return cli_synth(args)

    s.set_defaults(func=_synth)

    c = csub.add_parser("check", help="count, measure and list every problem of a LibriSpeech subset")
    c.add_argument("subset_dir", help="ROOT/<subset>, e.g. LibriSpeech/dev-clean, or embedded:dev-clean")
    c.add_argument("--on-error", choices=("skip", "stop"), default="skip")

    def _check(args: argparse.Namespace) -> int:
        from core.data.check import cli_check

        return cli_check(args)

    c.set_defaults(func=_check)

    d = csub.add_parser("download", help="fetch and verify an official LibriSpeech archive (needs a network)")
    d.add_argument("--subset", default="dev-clean")
    d.add_argument("--out", required=True)
    d.add_argument("--url", default=None, help="override the archive URL (mirrors, tests)")

    def _download(args: argparse.Namespace) -> int:
        from core.data.download import cli_download

        return cli_download(args)

    d.set_defaults(func=_download)
