"""The loaders that time a build (the runner's, the deploy probe's) import what every build shares first."""
from __future__ import annotations


def test_the_loaders_that_time_builds_import_first() -> None:
    """The first ``load_variant`` of a process imports every method module and the model class (about 2.8 s on a
    2-vCPU EPYC, against 0.2 s for the teacher's build itself): the runner's loader and the deploy probe import them
    before any clock starts, or the teacher (built first, the reference of every break-even) carries them and every
    later variant looks cheaper to build than it is.  In a fresh process: nothing of it is imported before."""
    import subprocess
    import sys

    code = ("import argparse, sys\n"
            "from footprint.commands.bench import variant_loader\n"
            "mods = ('compress.methods.int8_inductor', 'transformers.models.wav2vec2.modeling_wav2vec2')\n"
            "before = [m in sys.modules for m in mods]\n"
            "variant_loader(argparse.Namespace(), 'embedded:dev-clean')\n"
            "print(before, [m in sys.modules for m in mods])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[False, False] [True, True]"
