"""The ``loomnet`` command: ``train``, ``predict``, ``evaluate``, ``inspect``, ``explain``, ``datasets``."""

from .main import main

__all__ = ["main"]
