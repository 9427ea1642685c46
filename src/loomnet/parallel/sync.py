"""Synchronous data-parallel steps: a fixed number of micro-batches, reduced in a fixed order.

Every batch is cut into ``micro_batches`` slices whatever the number of workers; worker t
gathers and computes slices t, t+N, t+2N, ... each into its own preallocated gradient buffer,
with the whole batch's normaliser, so the slices add up to the batch gradient. The reduction
grad = ((g₀ + g₁) + g₂) + … always runs in slice order; each worker adds up one contiguous
chunk of the parameters and, in a whole training step, applies the optimiser to that chunk
while it is still in cache. Same slices, same order, elementwise updates: the same bits for
any number of workers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..network import StepWorkspace
from ..optimizers import BLOCK, THREAD_BLOCK, StepUpdate
from .pool import WorkerPool

if TYPE_CHECKING:
    from ..training import Trainer

Array = NDArray[np.floating]


class SyncWorkers:
    """Batch gradients, or whole training steps, for a Trainer on ``pool.workers`` threads over
    a fixed number of micro-batches."""

    def __init__(self, trainer: Trainer, micro_batches: int, pool: WorkerPool):
        model = trainer.model
        self.trainer, self.pool, self.micro_batches = trainer, pool, micro_batches
        workers = pool.workers
        # slice 0 is written straight into trainer.grad; the others get one buffer each
        self.buffers = np.zeros((micro_batches - 1, model.params.size), dtype=model.dtype)
        # one workspace per slice, not per worker: uneven slices keep their buffers between steps
        self.workspaces = [trainer.ws] + [StepWorkspace() for _ in range(micro_batches - 1)]
        # with several workers, each updates its chunk in as few blocks as it can (see THREAD_BLOCK)
        block = BLOCK if workers == 1 else min(THREAD_BLOCK, -(-model.params.size // workers))
        self.scratch = [np.empty(min(model.params.size, block), dtype=model.dtype) for _ in range(workers)]
        self.losses = np.zeros(micro_batches)
        self.chunks = [i * model.params.size // workers for i in range(workers + 1)]
        self.barrier = threading.Barrier(workers) if workers > 1 else None

    def compute_gradient(self, Xb: Array, yb: NDArray, wb: Array | None, epoch: int, step: int,
                         scale: float = 1.0) -> float:
        """Loss of a gathered batch; writes ``scale`` × its gradient into ``trainer.grad``."""
        normalizer = float(Xb.shape[0]) if wb is None else float(wb.sum())

        def rows(lo: int, hi: int, ws: StepWorkspace) -> tuple[Array, NDArray, Array | None]:
            return Xb[lo:hi], yb[lo:hi], None if wb is None else wb[lo:hi]

        return self._run(rows, Xb.shape[0], normalizer, epoch, step, scale, None)

    def train_step(self, idx: NDArray[np.int64], epoch: int, step: int, scale: float, update: StepUpdate) -> float:
        """One whole step on the trainer's rows ``idx``: each slice is gathered by its worker
        (``Trainer.gather`` on part of a batch, from that thread), and ``update`` is applied
        chunk by chunk by the workers unless the loss is not finite."""
        trainer = self.trainer
        weights = trainer.sample_weight
        normalizer = float(len(idx)) if weights is None else float(weights.take(idx).sum())

        def rows(lo: int, hi: int, ws: StepWorkspace) -> tuple[Array, NDArray, Array | None]:
            return trainer.gather(idx[lo:hi], ws)

        return self._run(rows, len(idx), normalizer, epoch, step, scale, update)

    def _run(self, rows: Callable[[int, int, StepWorkspace], tuple[Array, NDArray, Array | None]], n: int,
             normalizer: float, epoch: int, step: int, scale: float, update: StepUpdate | None) -> float:
        trainer, model = self.trainer, self.trainer.model
        m, workers = self.micro_batches, self.pool.workers
        bounds = [j * n // m for j in range(m + 1)]
        params, grad, buffers, losses = model.params, trainer.grad, self.buffers, self.losses

        def work(t: int) -> None:
            for j in range(t, m, workers):
                lo, hi = bounds[j], bounds[j + 1]
                out = grad if j == 0 else buffers[j - 1]
                if lo == hi:
                    out[:] = 0
                    losses[j] = model.add_l2(params, out, scale) if j == 0 and model.l2 > 0 else 0.0
                    continue
                ws = self.workspaces[j]
                Xb, yb, wb = rows(lo, hi, ws)
                losses[j], _ = model.loss_and_grad(
                    params, Xb, yb, wb, grad=out, normalizer=normalizer, rng=trainer.dropout_rng(epoch, step, j),
                    ws=ws, include_l2=j == 0, grad_scale=scale)
            if self.barrier is not None:
                self.barrier.wait()  # every slice is done: the parameters may change from here on
            lo, hi = self.chunks[t], self.chunks[t + 1]
            part = grad[lo:hi]
            for k in range(m - 1):
                part += buffers[k, lo:hi]
            # the Trainer's own test, on the same sum: a step it calls diverged is never applied
            if update is not None and math.isfinite(_total(losses)):
                update.apply(grad, lo, hi, self.scratch[t])

        if workers == 1:
            work(0)
        else:
            self.pool.run(work, on_error=self.barrier.abort)
        return _total(losses)


def _total(losses: NDArray[np.float64]) -> float:
    """The batch loss: the slices' losses added left to right, as Python floats."""
    total = 0.0
    for value in losses:
        total += float(value)
    return total
