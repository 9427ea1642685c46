"""Where the modules of loomnet 0.2 went (folders by role in 0.3).

Registered under their old names, so ``import loomnet.network`` and scikit-learn estimators
pickled by 0.2 still load. New code imports from the new places.
"""

from __future__ import annotations

import importlib
import sys

MOVED = {
    "activations": "engine.activations", "initializers": "engine.initializers", "layers": "engine.layers",
    "losses": "engine.losses", "network": "engine.network", "optimizers": "engine.optimizers",
    "schedules": "engine.schedules", "preprocessing": "engine.preprocessing", "metrics": "engine.metrics",
    "modelfile": "io.modelfile", "checkpoint": "io.checkpoint", "data_io": "io.tables", "datasets": "io.datasets",
    "parallel.loader": "training.loader", "parallel.streaming": "training.streaming",
}


def register() -> None:
    """Make every old module name an alias of its new module."""
    for old, new in MOVED.items():
        sys.modules.setdefault(f"loomnet.{old}", importlib.import_module(f"loomnet.{new}"))
