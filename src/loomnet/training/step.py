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
from contextlib import AbstractContextManager, nullcontext
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


@dataclass
class Batch:
    """One step's batch: where it is in the run, its rows and the scalars every slice shares."""

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
    """

    def __init__(self, index: int, optimizer: Optimizer, params: Array, seed: int,
                 grad: Array | None = None, ws: StepWorkspace | None = None):
        self.index, self.optimizer = index, optimizer
        self.grad = np.zeros_like(params) if grad is None else grad
        self.ws = StepWorkspace() if ws is None else ws
        self.noise = BatchNoise(seed, index)
        self.scratch: Array | None = None
        self.guard: AbstractContextManager = nullcontext()
        self.updates = 0      # updates this lane applied in the current epoch
        self.staleness = 0    # updates other lanes applied between this lane's reads and writes

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
        self._lock = threading.Lock() if lanes > 1 else nullcontext()

    def tick(self, lane: Lane, seen: int) -> None:
        with self._lock:
            lane.staleness += self.updates - seen
            self.updates += 1
        lane.updates += 1


class Gradient(Protocol):
    """How a runner computes a batch's gradient into ``lane.grad`` (and may apply ``update`` itself)."""

    def __call__(self, step: Step, batch: Batch, lane: Lane, update: StepUpdate | None) -> float: ...


class Step:
    """The training step of ``model`` on ``data``; ``penalty(batch_weight)`` gives a batch's L2
    strength (default: the model's ``l2``)."""

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

    def slice_gradient(self, batch: Batch, positions: slice | NDArray[np.int64], out: Array, ws: StepWorkspace,
                       first: bool) -> float:
        """Gather, forward, loss and backward of some rows of the batch (a slice, or positions in
        it): their loss and ``batch.scale`` × gradient into ``out``, normalised by the whole batch.
        The L2 term is added once, by the slice that is ``first``."""
        model = self.model
        rows = batch.idx[positions]
        if len(rows) == 0:
            out[:] = 0
            return model.add_l2(model.params, out, batch.scale, batch.l2) if first and batch.l2 > 0 else 0.0
        Xb, yb, wb = self.data.gather(rows, ws)
        noise = None if batch.noise is None else batch.noise.rows(positions)
        loss, _ = model.loss_and_grad(model.params, Xb, yb, wb, grad=out, normalizer=batch.weight, rng=noise, ws=ws,
                                      include_l2=first, grad_scale=batch.scale, l2=batch.l2)
        return loss

    def run(self, lane: Lane, epoch: int, step: int, idx: NDArray[np.int64], clock: UpdateClock,
            gradient: Gradient) -> float:
        """One step on ``lane``: the runner's ``gradient``, then the update unless the loss diverged."""
        opt, params = lane.optimizer, self.model.params
        seen = clock.updates
        lr = self.model.optimizer.schedule(epoch, seen)  # the model's schedule: the one told about val_loss
        # SGD's update is linear in lr·g: the backward pass scales dL/d(output) (a batch × outputs
        # multiply) instead of the optimiser making a pass over every parameter.
        fold = opt.folds_learning_rate
        batch = self.batch(lane, epoch, step, idx, lr, fold)
        # Clipping needs the whole gradient's norm before any update: then the update comes after.
        update = opt.begin_step(params, lr, grad_scaled=fold) if opt.clip_norm is None else None
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
        with lane.guard:
            if update is None:
                opt.step(params, lane.grad, lr, scratch=lane.scratch)
            elif not update.applied:
                update.apply(lane.grad, scratch=lane.scratch)
        clock.tick(lane, seen)
        return loss


def serial_gradient(step: Step, batch: Batch, lane: Lane, update: StepUpdate | None) -> float:
    """The whole batch at once, on the calling thread."""
    return step.slice_gradient(batch, slice(0, len(batch.idx)), lane.grad, lane.ws, True)
