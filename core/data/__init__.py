"""Speech data: the LibriSpeech reader, checker and downloader, and the synthetic corpus.

Standard library only at module level: ``core.data`` is imported by the CLI before any command runs.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import FootprintError

EMBEDDED_PREFIX = "embedded:"


def resolve_data(spec: str | Path) -> Path:
    """A data spec -> a LibriSpeech subset directory (``ROOT/LibriSpeech/<subset>`` or a user path).

    * a path (``str`` or ``Path``) passes through unchanged (``~`` expanded);
    * ``embedded:<subset>`` (e.g. ``embedded:dev-clean``) generates the synthetic corpus on first use
      (cached afterwards) and returns its ``LibriSpeech/<subset>`` directory.
    """
    if isinstance(spec, Path):
        return spec.expanduser()
    if spec.startswith(EMBEDDED_PREFIX):
        subset = spec[len(EMBEDDED_PREFIX):].strip() or "dev-clean"
        # Imported lazily: the generator pulls in numpy/espeak and must not load for plain paths.
        from core.data.synth.corpus import ensure_corpus
        try:
            # Only the requested subset: a check of dev-clean must not synthesise hours of train-clean.
            root = ensure_corpus(subsets=(subset,))
        except ValueError as exc:  # unknown synthetic subset
            raise FootprintError(f"{spec}: {exc}") from None
        return Path(root) / "LibriSpeech" / subset
    return Path(spec).expanduser()
