"""Synchronous data-parallel steps: a fixed number of micro-batches, reduced in a fixed order.

Every batch is cut into ``micro_batches`` slices whatever the number of workers; worker t
gathers and computes slices t, t+N, t+2N, ... (:meth:`Step.slice_gradient`) each into its own
preallocated gradient buffer, with the whole batch's normaliser, so the slices add up to the
batch gradient. The reduction grad = ((g₀ + g₁) + g₂) + … always runs in slice order; each
worker adds up one contiguous chunk of the parameters and applies the optimiser to that chunk
while it is still in cache. Dropout reads each slice's rows of the batch's noise. Same slices,
same order, elementwise updates, one BLAS thread each: the same bits for any number of workers.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..engine.optimizers import BLOCK, THREAD_BLOCK
from ..engine.params import StepWorkspace
from .threads import ThreadRunner

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..engine.optimizers import StepUpdate
    from ..training import Batch, Lane, Step, Trainer

Array = NDArray[np.floating]


class SyncThreadRunner(ThreadRunner):
    """Each step's batch in ``plan.micro_batches`` slices over ``plan.workers`` threads."""

    lanes = 1
    applies_update = True  # each worker updates its chunk of the parameters while it is in cache

    @contextmanager
    def session(self, trainer: Trainer) -> Iterator[list[Lane]]:
        model, m, workers = trainer.model, self.plan.micro_batches, self.plan.workers
        n = model.params.size
        # slice 0 is written straight into the lane's gradient; the others get one buffer each
        self.buffers = np.zeros((m - 1, n), dtype=model.dtype)
        # one workspace per slice, not per worker: uneven slices keep their buffers between steps
        self.workspaces = [trainer.ws] + [StepWorkspace() for _ in range(m - 1)]
        # with several workers, each updates its chunk in as few blocks as it can (see THREAD_BLOCK)
        block = BLOCK if workers == 1 else min(THREAD_BLOCK, -(-n // workers))
        self.scratch = [np.empty(min(n, block), dtype=model.dtype) for _ in range(workers)]
        self.losses = np.zeros(m)
        self.chunks = [i * n // workers for i in range(workers + 1)]
        self.barrier = threading.Barrier(workers) if workers > 1 else None
        with super().session(trainer) as lanes:
            yield lanes

    def gradient(self, step: Step, batch: Batch, lane: Lane, update: StepUpdate | None) -> float:
        """The batch's loss; its gradient summed in slice order into ``lane.grad``, and ``update``
        applied chunk by chunk by the workers unless the loss is not finite."""
        m, workers = self.plan.micro_batches, self.plan.workers
        n = len(batch.idx)
        bounds = [j * n // m for j in range(m + 1)]
        grad, buffers, losses = lane.grad, self.buffers, self.losses

        def work(t: int) -> None:
            for j in range(t, m, workers):
                out = grad if j == 0 else buffers[j - 1]
                losses[j] = step.slice_gradient(batch, slice(bounds[j], bounds[j + 1]), out, self.workspaces[j],
                                                j == 0)
            if self.barrier is not None:
                self.barrier.wait()  # every slice is done: the parameters may change from here on
            lo, hi = self.chunks[t], self.chunks[t + 1]
            part = grad[lo:hi]
            for k in range(m - 1):
                part += buffers[k, lo:hi]
            # the step's own test, on the same sum: a step it calls diverged is never applied
            if update is not None and math.isfinite(total_loss(losses)):
                update.apply(grad, lo, hi, self.scratch[t])

        if workers == 1:
            work(0)
        else:
            self.pool.run(work, on_error=self.barrier.abort)
        return total_loss(losses)


def total_loss(losses: NDArray[np.float64]) -> float:
    """The batch loss: the slices' losses added left to right, as Python floats."""
    total = 0.0
    for value in losses:
        total += float(value)
    return total
