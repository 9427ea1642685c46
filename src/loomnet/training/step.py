"""One training step, defined once: gather → forward → loss → backward → reduce → update.

:class:`Step` is the whole definition; a runner (:mod:`loomnet.training.runner`) decides only
where the slices of a batch are computed and how their gradients are added up (one thread,
synchronous threads, MPI ranks). Asynchronous workers each run the same step on their own
:class:`Lane`. Divergence is handled here too: a step whose loss is not finite is never applied.
"""

from __future__ import annotations

import copy
import math
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from ..engine.params import StepWorkspace
from .history import TrainingDivergedError
from .streams import BatchNoise

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..engine.network import Sequential
    from ..engine.optimizers import Optimizer, StepUpdate
    from .data import TrainingData

Array = NDArray[np.floating]


@dataclass(slots=True)
class Batch:
    """One step's batch: where it is in the run, its rows and the scalars every slice shares.

    Made by :meth:`Step.batch`; a runner that splits the batch into slices hands the same Batch to
    every :meth:`Step.slice_gradient` call, so each slice is normalised by the whole batch.

    Parameters
    ----------
    epoch, step : int
        Where the batch is in the run (0-based); with the row positions they key the dropout masks.
    idx : ndarray of int
        The batch's rows of the training data.
    weight : float
        The whole batch's normaliser (its summed sample weights).
    l2 : float
        The batch's L2 strength.
    scale : float
        The gradient's factor (the learning rate when the optimiser folds it in, else 1).
    noise : BatchNoise or None
        The dropout streams of the batch, or None without dropout.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.training import Lane, Step, TrainingData
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], seed=0).build(4)
    >>> data = TrainingData(model.prepare_X(iris.X), model.prepare_y(iris.y, fit=True))
    >>> lane = Lane(0, model.optimizer, model.params, seed=0)
    >>> Step(model, data).batch(lane, epoch=0, step=0, idx=np.arange(8), lr=0.1, fold=False).weight
    8.0
    """

    epoch: int
    step: int
    idx: NDArray[np.int64]
    weight: float           # the whole batch's normaliser: slices' gradients add up to the batch gradient
    l2: float               # this batch's L2 strength
    scale: float            # the gradient's factor: lr when the optimiser takes lr·g, else 1
    noise: BatchNoise | None


class Lane:
    """One sequence of steps: its optimiser, gradient buffer, workspace and dropout noise.

    Synchronous runners train on one lane (the model's own optimiser); asynchronous workers on
    one lane each, with their own optimiser state. ``guard`` wraps the update (a lock shared by
    the lanes in locked mode); ``scratch`` is the update's block buffer (None: the optimiser's).

    Parameters
    ----------
    index : int
        The lane's number (0 for the model's own); it keys the lane's dropout streams.
    optimizer : Optimizer
        The optimiser whose state this lane's updates use.
    params : ndarray
        The flat parameters the lane updates (shared by all lanes).
    seed : int
        The run's seed.
    grad : ndarray, optional
        The gradient buffer (default: a new one shaped like ``params``).
    ws : StepWorkspace, optional
        The lane's scratch buffers (default: a new one). Never shared between threads.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.training import Lane, Step, TrainingData
    >>> from loomnet.training.step import UpdateClock, serial_gradient
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], optimizer="sgd", seed=0).build(4)
    >>> data = TrainingData(model.prepare_X(iris.X), model.prepare_y(iris.y, fit=True))
    >>> step, lane = Step(model, data), Lane(0, model.optimizer, model.params, seed=0)
    >>> before = model.params.copy()
    >>> loss = step.run(lane, 0, 0, np.arange(32), UpdateClock(0, 1), serial_gradient)
    >>> round(loss, 4), bool((model.params != before).any())
    (2.1521, True)
    """

    def __init__(self, index: int, optimizer: Optimizer, params: Array, seed: int,
                 grad: Array | None = None, ws: StepWorkspace | None = None):
        self.index, self.optimizer = index, optimizer
        self.grad = np.zeros_like(params) if grad is None else grad
        self.ws = StepWorkspace() if ws is None else ws
        self.noise = BatchNoise(seed, index)
        self.scratch: Array | None = None
        self.guard: AbstractContextManager | None = None  # None: no lock around the update
        self.updates = 0      # updates this lane applied in the current epoch
        self.staleness = 0    # updates other lanes applied between this lane's reads and writes
        self.loss_sum = 0.0   # the epoch's summed batch losses × rows, and rows, when no callback needs them live
        self.samples = 0

    @classmethod
    def copies(cls, count: int, model: Sequential, seed: int, first: Lane) -> list[Lane]:
        """``first`` and ``count - 1`` more lanes, each with a copy of the model's optimiser."""
        return [first] + [cls(t, copy.deepcopy(model.optimizer), model.params, seed) for t in range(1, count)]


class UpdateClock:
    """The global update count (the parameters' version), which the learning-rate schedule follows.

    With several lanes it also measures staleness: how many updates other lanes applied between a
    lane reading the parameters and writing its update.
    """

    def __init__(self, updates: int, lanes: int):
        self.updates = updates
        self._lock = threading.Lock() if lanes > 1 else None

    def tick(self, lane: Lane, seen: int) -> None:
        if self._lock is None:  # one lane: nothing can come between its read and its write
            self.updates += 1
        else:
            with self._lock:
                lane.staleness += self.updates - seen
                self.updates += 1
        lane.updates += 1


class Gradient(Protocol):
    """How a runner computes a batch's gradient into ``lane.grad`` (and may apply ``update`` itself)."""

    def __call__(self, step: Step, batch: Batch, lane: Lane, update: StepUpdate | None) -> float: ...


class Step:
    """The training step of ``model`` on ``data``: gather → forward → loss → backward → reduce →
    update, with divergence handling, defined once for every runner.

    The runner decides only where the gradient is computed (:meth:`slice_gradient` on slices of
    the batch, added in a fixed order) and whether it applies the update itself; :meth:`run`
    does the rest, and raises :class:`TrainingDivergedError` before any update when the loss is
    not finite.

    Parameters
    ----------
    model : Sequential
        A built network.
    data : TrainingData
        The prepared rows and how batches are drawn from them.
    penalty : callable, optional
        ``penalty(batch_weight)``: the batch's L2 strength (e.g. :class:`BatchL2`); default, the
        model's ``l2``.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.training import Lane, Step, TrainingData
    >>> from loomnet.training.step import UpdateClock, serial_gradient
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], optimizer="sgd", seed=0).build(4)
    >>> data = TrainingData(model.prepare_X(iris.X), model.prepare_y(iris.y, fit=True))
    >>> step, lane = Step(model, data), Lane(0, model.optimizer, model.params, seed=0)
    >>> before = model.params.copy()
    >>> loss = step.run(lane, 0, 0, np.arange(32), UpdateClock(0, 1), serial_gradient)
    >>> round(loss, 4), bool((model.params != before).any())
    (2.1521, True)
    """

    def __init__(self, model: Sequential, data: TrainingData, penalty: Callable[[float], float] | None = None):
        self.model, self.data, self.penalty = model, data, penalty

    def batch(self, lane: Lane, epoch: int, step: int, idx: NDArray[np.int64], lr: float, fold: bool) -> Batch:
        weight = self.data.batch_weight(idx)
        l2 = self.model.l2 if self.penalty is None else self.penalty(weight)
        noise = None
        if self.model.has_dropout:
            noise = lane.noise
            noise.begin(epoch, step, len(idx))
        return Batch(epoch, step, idx, weight, l2, lr if fold else 1.0, noise)

    def slice_gradient(self, batch: Batch, positions: slice | NDArray[np.int64] | None, out: Array,
                       ws: StepWorkspace, first: bool) -> float:
        """Gather, forward, loss and backward of some rows of the batch (a slice, or positions in
        it): their loss and ``batch.scale`` × gradient into ``out``, normalised by the whole batch.
        The L2 term is added once, by the slice that is ``first``."""
        model = self.model
        rows = batch.idx if positions is None else batch.idx[positions]  # None: the whole batch
        if len(rows) == 0:
            out[:] = 0
            return model.add_l2(model.params, out, batch.scale, batch.l2) if first and batch.l2 > 0 else 0.0
        Xb, yb, wb = self.data.gather(rows, ws)
        noise = None if batch.noise is None else batch.noise.rows(slice(None) if positions is None else positions)
        loss, _ = model.loss_and_grad(model.params, Xb, yb, wb, grad=out, normalizer=batch.weight, rng=noise, ws=ws,
                                      include_l2=first, grad_scale=batch.scale, l2=batch.l2)
        return loss

    def run(self, lane: Lane, epoch: int, step: int, idx: NDArray[np.int64], clock: UpdateClock,
            gradient: Gradient, applies_update: bool = False) -> float:
        """One step on ``lane``: the runner's ``gradient``, then the update unless the loss diverged.

        ``applies_update``: the runner applies the update itself, range by range, from a
        :class:`StepUpdate` (synchronous workers each update their chunk); otherwise the update is
        one optimiser step here, after the gradient.
        """
        opt, model = lane.optimizer, self.model
        params = model.params
        seen = clock.updates
        lr = model.optimizer.schedule(epoch, seen)  # the model's schedule: the one told about val_loss
        # SGD's update is linear in lr·g: the backward pass scales dL/d(output) (a batch × outputs
        # multiply) instead of the optimiser making a pass over every parameter.
        fold = opt.folds_learning_rate
        batch = self.batch(lane, epoch, step, idx, lr, fold)
        # Clipping needs the whole gradient's norm before any update: then the update comes after.
        update = opt.begin_step(params, lr, grad_scaled=fold) if applies_update and opt.clip_norm is None else None
        try:
            loss = gradient(self, batch, lane, update)  # a runner applies the update only when the loss is finite
        except BaseException:
            if update is not None and not update.applied:  # failed before any update: the step never happened
                update.cancel()
            raise
        if not math.isfinite(loss):
            if update is not None:
                update.cancel()
            raise TrainingDivergedError(epoch + 1, step + 1, loss)
        if update is None:
            if lane.guard is None:
                opt.step(params, lane.grad, lr, grad_scaled=fold, scratch=lane.scratch)
            else:
                with lane.guard:
                    opt.step(params, lane.grad, lr, grad_scaled=fold, scratch=lane.scratch)
        elif not update.applied:
            update.apply(lane.grad, scratch=lane.scratch)
        clock.tick(lane, seen)
        return loss


def serial_gradient(step: Step, batch: Batch, lane: Lane, update: StepUpdate | None) -> float:
    """The whole batch at once, on the calling thread."""
    return step.slice_gradient(batch, None, lane.grad, lane.ws, True)
