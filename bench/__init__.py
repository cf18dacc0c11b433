"""bench: data, inference, scoring, energy trackers and the benchmark runner of w2v-footprint.

Importing this package does not import torch; heavy modules are imported where they are used.
"""
__all__ = ["__version__"]
__version__ = "0.1.0"
