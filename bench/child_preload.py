"""What the memory children's fork server imports once (``bench.memory.PRELOAD``), so that each child starts with
the libraries instead of importing them again; their import-time notices (torchao's CUDA libraries, torch's
pytree deprecations) stay off the console, as in every other process (``core.console.quiet_import``)."""
from core import console

with console.quiet_import():
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import Wav2Vec2ForCTC  # noqa: F401

    import compress.variants  # noqa: F401
    import core.inference  # noqa: F401
