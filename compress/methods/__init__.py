"""Compression recipes for wav2vec 2.0 CTC models, one module per method, one shape for all.

Each method is a dataclass config and ``apply(model, config) -> model`` that registers itself under a recipe
name with :func:`compress.methods.registry.register_method` (as torchao's ``register_quantize_module_handler``).
Recipes chain with ``+``, applied left to right: ``distill-L4+int8-dynamic``, ``prune-sensitivity+int8-dynamic``.

* :mod:`.baseline` - the model as it is.
* :mod:`.students` - ``distill-L{n}`` / ``maxpool-conv{c}``: students trained by :mod:`.distill`, looked up.
* :mod:`.maxpool` - 3 of the 7 conv layers replaced by max-pooling (Table 3); untrained until distilled.
* :mod:`.quantize` - int8 dynamic / int8 static / fp16 / bf16 / bf16-autocast / torchao int8 weight-only.
* :mod:`.prune` - Distiller's sensitivity pruner (threshold = sensitivity x std of the layer's weights).
* :mod:`.prune_structured` - heads, feed-forward neurons and conv channels removed, then distillation
  (training; the result is looked up as ``prune-structured-{p}`` by :mod:`.students`).
* :mod:`.compiled` - ``compile``: torch.compile of the conv front end (or the whole model), weights unchanged.
* :mod:`.int8_inductor` - ``int8-inductor``: the encoder's Linears int8 via torchao PT2E, compiled by Inductor.
* :mod:`.openvino` - ``ov-fp32`` / ``ov-int8``: converted to OpenVINO (NNCF int8), run by its CPU plugin.
* :mod:`.buckets` - ``buckets``: batches padded to a fixed set of lengths (kernels reused on lengths never seen).
* :mod:`.calibration` - the one chooser of calibration audio (int8-static, int8-inductor-static, pruning).
* :mod:`.distill` - knowledge distillation (eq. 1 of the paper) into fewer transformer layers (training).
* :mod:`.storage` - how each variant is saved (Hugging Face dir, or safetensors with int8 / sparse encodings)
  and ``variant.json``; :mod:`compress.variants` loads any of them.

Importing the package imports (and so registers) every method module below, which loads torch; the command
layer reads the registry only inside its handlers.  The import order is the order of ``footprint compress
recipes`` and of the README's table.
"""
# importing a method module registers it; one line per method
from compress.methods import baseline  # noqa: F401
from compress.methods import students  # noqa: F401
from compress.methods import maxpool  # noqa: F401
from compress.methods import quantize  # noqa: F401
from compress.methods import prune  # noqa: F401
from compress.methods import compiled  # noqa: F401
from compress.methods import front_end  # noqa: F401
from compress.methods import int8_inductor  # noqa: F401
from compress.methods import ort  # noqa: F401
from compress.methods import openvino  # noqa: F401
from compress.methods import buckets  # noqa: F401
