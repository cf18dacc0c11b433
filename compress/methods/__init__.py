"""Compression recipes for wav2vec 2.0 CTC models, one module per method, one shape for all.

Each method has a dataclass config and ``apply(model, config) -> model`` registered under a recipe name in
:mod:`compress.methods.registry` (in the spirit of torchao's ``quantize_(model, Config())``).  Recipes chain
with ``+``, applied left to right: ``distill-L4+int8-dynamic``, ``prune-sensitivity+int8-dynamic``.

* :mod:`.distill` - knowledge distillation (eq. 1 of the paper) into fewer transformer layers; needs training.
* :mod:`.quantize` - int8 dynamic / int8 static / fp16 / bf16 / torchao int8 weight-only.
* :mod:`.prune` - Distiller's sensitivity pruner (threshold = sensitivity x std of the layer's weights).
* :mod:`.maxpool` - 3 of the 7 conv layers replaced by max-pooling (Table 3); needs training.
* :mod:`.storage` - how each variant is saved (Hugging Face dir, or safetensors with int8 / sparse encodings)
  and ``variant.json``; :mod:`compress.variants` loads any of them.

Importing this package imports no torch; the modules do.
"""
