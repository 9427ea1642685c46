"""Asynchronous training (Hogwild!): every worker runs SGD on its own shard, updating shared parameters.

Each epoch's permutation is cut into one shard per worker. A worker gathers its batch,
computes the gradient at the parameters as they are right now, and applies its optimiser
step in place on the one shared flat array, without a lock: some updates are computed from
parameters another worker has changed meanwhile (stale). Hogwild! (Niu et al., 2011) shows
SGD converges anyway when updates are sparse or small; here it wins because no worker ever
waits for another. ``locked=True`` serialises the updates (not the gradients) for comparison.

Staleness of an update = how many updates other workers applied between reading the
parameters and writing this update. Each worker has its own optimiser state (momentum,
moments): shared state arrays would be scratch space that the workers overwrite under each other.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from ..network import StepWorkspace
from ..optimizers import THREAD_BLOCK
from ..training import TrainingDivergedError
from .pool import WorkerPool

if TYPE_CHECKING:
    from ..training import Trainer


class HogwildEpochs:
    """Runs whole epochs of asynchronous SGD on ``pool.workers`` workers for a Trainer."""

    def __init__(self, trainer: Trainer, pool: WorkerPool, locked: bool = False):
        model = trainer.model
        self.trainer, self.pool, self.locked = trainer, pool, locked
        workers = pool.workers
        self.optimizers = [copy.deepcopy(model.optimizer) for _ in range(workers)]
        self.grads = [np.zeros_like(model.params) for _ in range(workers)]
        block = min(model.params.size, THREAD_BLOCK)  # long blocks for threads: see THREAD_BLOCK
        self.scratch = [np.empty(block, dtype=model.dtype) for _ in range(workers)]
        self.workspaces = [trainer.ws] + [StepWorkspace() for _ in range(workers - 1)]
        self.update_lock = threading.Lock() if locked else None
        self._count_lock = threading.Lock()
        self.updates = model.optimizer.iterations  # global update count: the parameters' version
        self.stop = threading.Event()
        self.stats: dict[str, Any] = {}

    def run_epoch(self) -> bool:
        """Run the current epoch on all workers; True when training should stop."""
        trainer, model = self.trainer, self.trainer.model
        epoch, batch_size, workers = trainer.epoch, trainer.batch_size, self.pool.workers
        shards = np.array_split(trainer.epoch_order(epoch), workers)
        loss_sums, samples = [0.0] * workers, [0] * workers
        updates, staleness = [0] * workers, [0] * workers
        params = model.params
        schedule = model.optimizer.schedule  # the one the Trainer tells about val_loss (ReduceOnPlateau)
        fold = model.optimizer.folds_learning_rate  # lr·g from the backward pass, as Trainer.train_step

        def work(t: int) -> None:
            shard, opt, grad, ws = shards[t], self.optimizers[t], self.grads[t], self.workspaces[t]
            scratch = self.scratch[t]
            guard = self.update_lock if self.update_lock is not None else nullcontext()
            for local_step, start in enumerate(range(0, len(shard), batch_size)):
                if self.stop.is_set() or trainer.stop_requested:
                    return
                idx = shard[start:start + batch_size]
                Xb, yb, wb = trainer.gather(idx, ws)
                seen = self.updates
                lr = schedule(epoch, seen)
                loss, _ = model.loss_and_grad(params, Xb, yb, wb, grad=grad, ws=ws, grad_scale=lr if fold else 1.0,
                                              rng=trainer.dropout_rng(epoch, local_step, t))
                if not math.isfinite(loss):
                    raise TrainingDivergedError(epoch + 1, local_step + 1, loss)
                with guard:
                    opt.step(params, grad, lr, grad_scaled=fold, scratch=scratch)
                with self._count_lock:
                    staleness[t] += self.updates - seen
                    self.updates += 1
                updates[t] += 1
                loss_sums[t] += loss * len(idx)
                samples[t] += len(idx)

        t0 = time.perf_counter()
        try:
            self.pool.run(work, on_error=self.stop.set)
        except BaseException:
            if not np.isfinite(params).all():
                model.set_params(trainer._last_finite)
            raise
        finally:
            model.optimizer.iterations = self.updates
            trainer._epoch_time += time.perf_counter() - t0
            trainer._epoch_loss_sum += sum(loss_sums)
            trainer._epoch_samples += sum(samples)
        total = sum(updates)
        self.stats = {"updates_per_worker": updates,
                      "mean_staleness": sum(staleness) / total if total else 0.0}
        if trainer.stop_requested:
            return True
        self.finish()  # the model's optimiser is current for checkpoints taken at the epoch's end
        stop = trainer._finish_epoch()
        trainer.history.records[-1].update(self.stats)
        return stop

    def finish(self) -> None:
        """Hand worker 0's optimiser state and the global update count back to the model's optimiser."""
        optimizer = self.trainer.model.optimizer
        schedule_state = optimizer.schedule.state_dict()  # the model's schedule is the live one
        optimizer.load_state_dict(self.optimizers[0].state_dict())
        optimizer.schedule.load_state_dict(schedule_state)
        optimizer.iterations = self.updates
