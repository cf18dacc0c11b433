"""core: the foundations every other package builds on.

Errors, the CTC vocabulary and text normalisation, speech data (LibriSpeech reader, checker, downloader, the
synthetic corpus), inference and scoring, device parsing, the distributed context, provenance, architectures and
model statistics, and the results schema and store.  ``core`` imports nothing from ``compress``, ``bench``,
``reports`` or ``footprint`` (tests/test_layers.py checks it).  Importing this package does not import torch.
"""
__version__ = "0.1.0"
