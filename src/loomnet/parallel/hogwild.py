"""Asynchronous training (Hogwild!): every worker runs the training step on its own shard, updating shared parameters.

Each epoch's order is cut into one shard per worker (one :class:`~loomnet.training.Lane` each,
with its own optimiser state: shared moment arrays would be scratch space the workers overwrite
under each other). A worker gathers its batch, computes the gradient at the parameters as they
are right now, and applies its update in place on the one shared flat array, without a lock:
some updates are computed from parameters another worker has changed meanwhile (stale).
Hogwild! (Niu et al., 2011) shows SGD converges anyway when updates are sparse or small; here it
wins because no worker ever waits for another. ``locked=True`` serialises the updates (not the
gradients) for comparison. The step, its callbacks, L2 rule, weights, checkpoints and divergence
handling are those of every other runner: the epoch loop runs one lane per worker.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from ..engine.optimizers import THREAD_BLOCK
from ..training import Lane
from .threads import ThreadRunner

if TYPE_CHECKING:
    from ..training import Trainer
    from .plan import ParallelPlan


class AsyncThreadRunner(ThreadRunner):
    """One lane per worker; ``locked`` serialises the updates."""

    def __init__(self, plan: ParallelPlan, locked: bool = False):
        super().__init__(plan)
        self.lanes, self.locked = plan.workers, locked

    def prepare(self, trainer: Trainer, first: Lane) -> list[Lane]:
        model = trainer.model
        lanes = Lane.copies(self.lanes, model, trainer.seed, first)
        guard = threading.Lock() if self.locked else None
        for lane in lanes:
            lane.scratch = np.empty(min(model.params.size, THREAD_BLOCK), dtype=model.dtype)  # long blocks
            if guard is not None:
                lane.guard = guard
        return lanes

