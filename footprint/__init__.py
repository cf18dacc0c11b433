"""footprint: the command layer.  The ``footprint`` console script and the main job (``footprint run``) wire
``compress`` (variants), ``bench`` (measurement) and ``reports`` (rendering) together; nothing imports it."""
__version__ = "0.1.0"
