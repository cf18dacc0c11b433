"""compress: model I/O (Hugging Face, fairseq), the shipped teacher, and the compression recipes."""
__version__ = "0.1.0"
