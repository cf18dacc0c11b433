"""compress: builds variants: model I/O (Hugging Face, fairseq), the shipped teacher, teacher training and the
compression methods."""
__version__ = "0.1.0"
