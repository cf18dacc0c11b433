"""bench: measures variants: workloads, scenarios, trackers (clock, memory, energy meters) and the runner.

Importing this package does not import torch; heavy modules are imported where they are used.
"""
__all__ = ["__version__"]
__version__ = "0.1.0"
