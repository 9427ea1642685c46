"""Where the steps run: the small protocol every runner implements, and the one-thread runner.

The epoch loop (:mod:`loomnet.training.loop`) asks its runner for four things:

- ``session(trainer)``: a context for one ``Trainer.run`` that yields the lanes (one for
  synchronous runners, one per worker for asynchronous ones); threads, BLAS limits and Ctrl-C
  handling live and die inside it;
- ``run_lanes(work)``: call ``work(t)`` for every lane t (at once, on threads, when there are several);
- ``gradient(step, batch, lane, update)``: the batch's loss and gradient into ``lane.grad``
  (and, for a runner whose ``applies_update`` is true, the update itself),
  by :meth:`Step.slice_gradient` on slices of the batch, added up in a fixed order;
- ``stopping(trainer)``, ``end_epoch(trainer, lanes, stop)``, ``validation_output(model, X)`` and
  ``reduce_statistics(sums)``: what all workers or ranks must agree on (a stop request, stopping
  rules, validation scores, BatchNorm's population statistics).

Runners use only the Trainer's public attributes (``model``, ``data``, ``grad``, ``ws``,
``seed``, ``stop_requested``, ``history``). The thread runners live in :mod:`loomnet.parallel`,
the MPI runner in :mod:`loomnet.distributed`; they register how ``workers=...`` builds them
(:data:`RUNNERS`), so the training package never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .step import Lane, serial_gradient

if TYPE_CHECKING:
    from ..engine.network import Sequential
    from ..engine.optimizers import StepUpdate
    from .loop import Trainer
    from .step import Batch, Step

Array = NDArray[np.floating]


class SerialRunner:
    """The plain loop: every step on the calling thread, the whole batch at once (BLAS threads as they are).

    It is also the reference implementation of the runner protocol (see the module's docstring):
    thread and MPI runners implement the same methods. A runner is handed to
    :class:`~loomnet.Trainer` as ``runner=``; ``workers=`` builds one from :data:`RUNNERS`.

    Examples
    --------
    A runner that counts the gradients it computed:

    >>> import loomnet as ln
    >>> from loomnet.training import SerialRunner
    >>> class Counting(SerialRunner):
    ...     calls = 0
    ...     def gradient(self, step, batch, lane, update):
    ...         self.calls += 1
    ...         return super().gradient(step, batch, lane, update)
    >>> iris = ln.datasets.load("iris")
    >>> runner = Counting()
    >>> _ = ln.Trainer(ln.Sequential([ln.Dense(3)], seed=0), iris.X, iris.y, epochs=2, batch_size=50,
    ...                runner=runner).run()
    >>> runner.calls                                     # 3 batches of 50 rows, 2 epochs
    6
    """

    lanes = 1
    name = "serial"
    applies_update = False  # True: gradient() applies the step's update itself (see Step.run)
    is_root = True  # the process that prints and writes files (MPI: rank 0)

    @contextmanager
    def session(self, trainer: Trainer) -> Iterator[list[Lane]]:
        yield [Lane(0, trainer.model.optimizer, trainer.model.params, trainer.seed, trainer.grad, trainer.ws)]

    def run_lanes(self, work: Callable[[int], None], on_error: Callable[[], None] | None = None) -> None:
        work(0)

    def gradient(self, step: Step, batch: Batch, lane: Lane, update: StepUpdate | None) -> float:
        """The whole batch at once, on the calling thread (the step applies the update)."""
        return serial_gradient(step, batch, lane, update)

    def stopping(self, trainer: Trainer) -> bool:
        """Whether a stop was requested (MPI: agreed by every rank)."""
        return trainer.stop_requested

    def end_epoch(self, trainer: Trainer, lanes: list[Lane], stop: bool) -> bool:
        """Whether to stop, once every worker or rank has had its say (here: as decided)."""
        return stop

    def validation_output(self, model: Sequential, X: Array) -> Array:
        """The network's output on the validation rows."""
        return model._raw_output(X)

    def reduce_statistics(self, sums: NDArray[np.float64]) -> NDArray[np.float64]:
        """BatchNorm's measured sums added up over the processes that share the training (here: one)."""
        return sums

    def describe(self) -> str:
        return "one thread"

    def state_dict(self) -> dict[str, Any]:
        """How this runner was set up, for checkpoints (empty: nothing a resume must match)."""
        return {}

    def check_state(self, saved: dict[str, Any]) -> None:
        """Warn when a checkpoint written by ``saved`` cannot resume bit for bit here."""


class RunnerFactories:
    """How ``Trainer(workers=..., mode=..., micro_batches=...)`` builds a runner.

    :mod:`loomnet.parallel` registers the thread runners when it is imported (``import loomnet``
    does); the training package itself knows only the serial runner.
    """

    def __init__(self) -> None:
        self.threads: Callable[..., Any] | None = None

    def make(self, trainer: Trainer, workers: int | str | None, mode: str, micro_batches: int | None) -> Any:
        if workers is None:
            if micro_batches is not None:
                raise ValueError("micro_batches splits each batch over worker threads: give workers=N too")
            return SerialRunner()
        if self.threads is None:
            raise RuntimeError("the thread runners are registered by loomnet.parallel: import loomnet first")
        return self.threads(trainer, workers, mode, micro_batches)


RUNNERS = RunnerFactories()
