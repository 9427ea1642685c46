"""Synchronous data-parallel steps: a fixed number of micro-batches, reduced in a fixed order.

Every batch is cut into ``micro_batches`` slices whatever the number of workers; worker t
computes slices t, t+N, t+2N, ... each into its own preallocated gradient buffer, with the
whole batch's normaliser, so the slices add up to the batch gradient. The reduction
grad = ((g₀ + g₁) + g₂) + … always runs in slice order; each worker adds up one contiguous
chunk of the parameters. Same slices, same order: the same bits for any number of workers.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..network import StepWorkspace
from .pool import WorkerPool

if TYPE_CHECKING:
    from ..training import Trainer

Array = NDArray[np.floating]


class SyncGradient:
    """Computes ``trainer.grad`` for a batch with ``pool.workers`` threads over fixed micro-batches."""

    def __init__(self, trainer: Trainer, micro_batches: int, pool: WorkerPool):
        model = trainer.model
        self.trainer, self.pool, self.micro_batches = trainer, pool, micro_batches
        workers = pool.workers
        # slice 0 is written straight into trainer.grad; the others get one buffer each
        self.buffers = np.zeros((micro_batches - 1, model.params.size), dtype=model.dtype)
        self.workspaces = [trainer.ws] + [StepWorkspace() for _ in range(workers - 1)]
        self.losses = np.zeros(micro_batches)
        self.chunks = [i * model.params.size // workers for i in range(workers + 1)]
        self.barrier = threading.Barrier(workers) if workers > 1 else None

    def compute_gradient(self, Xb: Array, yb: NDArray, wb: Array | None, epoch: int, step: int,
                         scale: float = 1.0) -> float:
        """Loss of the batch; writes ``scale`` × the batch gradient into ``trainer.grad``."""
        trainer, model = self.trainer, self.trainer.model
        n, m, workers = Xb.shape[0], self.micro_batches, self.pool.workers
        bounds = [j * n // m for j in range(m + 1)]
        normalizer = float(n) if wb is None else float(wb.sum())
        params, grad, buffers, losses = model.params, trainer.grad, self.buffers, self.losses

        def work(t: int) -> None:
            ws = self.workspaces[t]
            for j in range(t, m, workers):
                lo, hi = bounds[j], bounds[j + 1]
                out = grad if j == 0 else buffers[j - 1]
                if lo == hi:
                    out[:] = 0
                    losses[j] = model.add_l2(params, out, scale) if j == 0 and model.l2 > 0 else 0.0
                    continue
                losses[j], _ = model.loss_and_grad(
                    params, Xb[lo:hi], yb[lo:hi], None if wb is None else wb[lo:hi], grad=out,
                    normalizer=normalizer, rng=trainer.dropout_rng(epoch, step, j), ws=ws, include_l2=j == 0,
                    grad_scale=scale)
            if self.barrier is not None:
                self.barrier.wait()
            part = grad[self.chunks[t]:self.chunks[t + 1]]
            for k in range(m - 1):
                part += buffers[k, self.chunks[t]:self.chunks[t + 1]]

        if workers == 1:
            work(0)
        else:
            self.pool.run(work, on_error=self.barrier.abort)
        loss = 0.0
        for value in losses:
            loss += float(value)
        return loss
