"""Wires thread-parallel training into a Trainer: validates the options, owns the threads.

The Trainer asks its ``parallel`` attribute for each training step or batch gradient (sync)
or each epoch (Hogwild). ``session()`` brackets ``Trainer.run``: it starts the workers, limits BLAS
threads, defers Ctrl-C to the next step boundary, and joins every thread on the way out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import numpy as np

from .auto import ParallelPlan, auto_plan, candidate_plans, measure_plans
from .cores import available_cores, blas_limits, blas_threads_per_worker
from .hogwild import HogwildEpochs
from .interrupt import deferred_interrupt
from .pool import WorkerPool
from .sync import SyncWorkers

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..optimizers import StepUpdate
    from ..training import Trainer

MODES = ("sync", "hogwild", "locked")


def make_plan(trainer: Trainer, workers: int | str, mode: str, micro_batches: int | None) -> ParallelPlan:
    """Check ``workers``/``mode``/``micro_batches`` and turn them into a plan."""
    if workers == "auto":
        if micro_batches is not None:
            raise ValueError("micro_batches is chosen by workers='auto'; give workers=N to set it")
        widths = [trainer.model.n_features] + [layer.n_out for layer in trainer.model.layers]
        cores = available_cores()
        prior = auto_plan(trainer.batch_size, widths, cores)
        return measure_plans(trainer, candidate_plans(trainer.batch_size, cores), prior)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer or 'auto', got {workers!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    workers = int(workers)
    if micro_batches is None:
        micro_batches = max(workers, available_cores())
    elif isinstance(micro_batches, bool) or not isinstance(micro_batches, (int, np.integer)) or micro_batches < 1:
        raise ValueError(f"micro_batches must be a positive integer, got {micro_batches!r}")
    elif mode == "sync" and micro_batches < workers:
        raise ValueError(f"micro_batches={micro_batches} is fewer than workers={workers}: "
                         "some workers would have nothing to do")
    if mode != "sync":
        return ParallelPlan(mode, workers, int(micro_batches), blas_threads_per_worker(workers))
    # BLAS threads follow the micro-batches, not the workers: a BLAS library may sum in another
    # order with another thread count, and the bits must not depend on the number of workers.
    blas = min(blas_threads_per_worker(workers), max(1, available_cores() // int(micro_batches)))
    return ParallelPlan(mode, workers, int(micro_batches), blas)


class ParallelTraining:
    """The parallel part of one Trainer: its plan, and while running, its workers."""

    def __init__(self, trainer: Trainer, plan: ParallelPlan):
        self.trainer, self.plan = trainer, plan
        self.runs_epochs = plan.mode != "sync"
        self._sync: SyncWorkers | None = None
        self._hogwild: HogwildEpochs | None = None

    @property
    def stats(self) -> dict:
        """Hogwild's last epoch: updates per worker and mean staleness (empty for sync)."""
        return {} if self._hogwild is None else self._hogwild.stats

    def compute_gradient(self, Xb, yb, wb, epoch: int, step: int, scale: float = 1.0) -> float:  # noqa: ANN001
        return self._sync.compute_gradient(Xb, yb, wb, epoch, step, scale)

    @property
    def runs_sync_steps(self) -> bool:
        """True while a session of synchronous workers is open (they can take whole steps)."""
        return self._sync is not None

    def train_step(self, idx: NDArray[np.int64], epoch: int, step: int, scale: float, update: StepUpdate) -> float:
        return self._sync.train_step(idx, epoch, step, scale, update)

    def run_epoch(self) -> bool:
        return self._hogwild.run_epoch()

    @contextmanager
    def session(self) -> Iterator[None]:
        """Workers, BLAS limits and Ctrl-C handling for one ``Trainer.run``; nothing outlives it."""
        trainer, plan = self.trainer, self.plan
        note = f"parallel: {plan.describe()}"
        if note not in trainer.history.notes:
            trainer.history.notes.append(note)
        if trainer.verbose:
            print(note, flush=True)
        with ExitStack() as stack:
            stack.enter_context(deferred_interrupt(self._request_stop))
            stack.enter_context(blas_limits(plan.blas_threads))
            pool = stack.enter_context(WorkerPool(plan.workers))
            if plan.mode == "sync":
                self._sync = SyncWorkers(trainer, plan.micro_batches, pool)
            else:
                self._hogwild = HogwildEpochs(trainer, pool, locked=plan.mode == "locked")
                stack.callback(self._hogwild.finish)
            try:
                yield
            finally:
                self._sync = None

    def _request_stop(self) -> None:
        self.trainer.stop_requested = True


def attach(trainer: Trainer, workers: int | str, mode: str, micro_batches: int | None) -> ParallelTraining:
    return ParallelTraining(trainer, make_plan(trainer, workers, mode, micro_batches))

