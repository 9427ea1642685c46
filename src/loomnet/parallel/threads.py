"""What every thread runner shares: persistent workers, BLAS limits and Ctrl-C at step boundaries.

``session`` brackets one ``Trainer.run``: it starts the workers, limits BLAS threads so that
workers × BLAS threads stay within the cores, defers Ctrl-C to the next step boundary, and joins
every thread on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from ..training.runner import SerialRunner
from .cores import blas_limits
from .interrupt import deferred_interrupt
from .pool import WorkerPool

if TYPE_CHECKING:
    from ..training import Lane, Trainer
    from .plan import ParallelPlan


class ThreadRunner(SerialRunner):
    """A runner on ``plan.workers`` persistent threads (the caller is worker 0)."""

    def __init__(self, plan: ParallelPlan):
        self.plan = plan
        self.pool: WorkerPool | None = None

    @property
    def name(self) -> str:
        return self.plan.mode

    def describe(self) -> str:
        return self.plan.describe()

    @contextmanager
    def session(self, trainer: Trainer) -> Iterator[list[Lane]]:
        note = f"parallel: {self.plan.describe()}"
        if note not in trainer.history.notes:
            trainer.history.notes.append(note)
        if trainer.verbose:
            print(note, flush=True)

        def request_stop() -> None:
            trainer.stop_requested = True

        with ExitStack() as stack:
            stack.enter_context(deferred_interrupt(request_stop))
            stack.enter_context(blas_limits(self.plan.blas_threads))
            self.pool = stack.enter_context(WorkerPool(self.plan.workers))
            try:
                with super().session(trainer) as lanes:
                    yield self.prepare(trainer, lanes[0])
            finally:
                self.pool = None

    def prepare(self, trainer: Trainer, first: Lane) -> list[Lane]:
        """The lanes of a session, from the trainer's own (lane 0)."""
        return [first]

    def run_lanes(self, work: Callable[[int], None], on_error: Callable[[], None] | None = None) -> None:
        if self.lanes == 1:
            work(0)
        else:
            self.pool.run(work, on_error=on_error)
