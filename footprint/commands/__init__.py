"""One module per command group; each defines ``register_<group>(subparsers)`` and imports only the standard
library at module level (so ``footprint report`` never loads torch)."""
