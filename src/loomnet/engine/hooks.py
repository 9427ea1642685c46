"""Where the engine finds what is built on it: the training loop and the model-file writer register
themselves here, so ``Sequential.fit`` and ``Sequential.save`` work without the engine importing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class _TrainingHook:
    """Where ``Sequential.fit`` finds the training loop: loomnet.training registers it, so the
    engine never imports the training package (which builds on the engine)."""

    fit: Callable[..., Any] | None = None


TRAINING = _TrainingHook()


class _SaveHook:
    """Where ``Sequential.save`` finds the model-file writer (loomnet.io registers it: io builds on the engine)."""

    save: Callable[..., Any] | None = None


SAVE = _SaveHook()
