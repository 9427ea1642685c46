"""The epoch loop: mini-batch gradient descent with validation, stopping rules, callbacks and checkpoints.

``batch_size`` covers the article's three flavours: n (full batch), k (mini-batch) and 1
(stochastic). Every random stream derives from (seed, epoch, step, row position), so a run can
be resumed from any step and gives the same parameters bit for bit. The loop drives the one
:class:`~loomnet.training.step.Step`; its runner decides where the step's arithmetic runs.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine._validation import check_positive, user_stacklevel
from ..engine.network import Sequential
from ..engine.params import StepWorkspace
from .callbacks import Callback, OverfittingMonitor
from .data import TrainingData, prepare_data
from .history import History, TrainingDivergedError, format_record
from .runner import RUNNERS, SerialRunner
from .step import Lane, Step, UpdateClock, serial_gradient
from .stopping import EarlyStopping, StoppingRules
from .validation import refresh_statistics, validation_scores

Array = NDArray[np.floating]


class Trainer:
    """Runs gradient descent on a model; holds all state a checkpoint needs to resume exactly.

    Parameters
    ----------
    model : Sequential
    X, y : array-like
        Raw training data: the model's preprocessing is fitted on the training rows here.
        Give ``data`` instead to train on already prepared rows.
    epochs : int
        Maximum number of passes over the data.
    batch_size : int, 'full' or None
        Rows per step: 1 is stochastic, 'full' (or None) full-batch gradient descent.
    validation_data : tuple (X, y) or (X, y, w), optional
        Held-out rows for ``val_loss``.
    validation_split : float
        Or hold out this fraction of the rows (stratified for classification).
    sample_weight : array-like, optional
        Per-row weights.
    class_weight : dict or 'balanced', optional
        Per-class weights (balanced: n / (k · count)).
    shuffle : bool
        Reshuffle every epoch (from the seed).
    loss_threshold : float or None
        Stop once an epoch's training loss is at or below it.
    early_stopping : EarlyStopping, int or None
        Stop when the monitored value stops improving (an int is a patience).
    callbacks : sequence of Callback
    verbose : bool
        Print a line per epoch.
    seed : int or None
        Seed of every random stream (default: the model's).
    classes : array-like or None
        All class labels, when some are missing from ``y``.
    workers : int, 'auto' or None
        Worker threads (:mod:`loomnet.parallel`); None is the plain loop on this thread.
    mode : {'sync', 'hogwild', 'locked'}
        How worker threads combine their work.
    micro_batches : int or None
        Slices per batch in ``mode='sync'`` (default: batch_size // 64, from 1 to 8; a function of the
        batch size alone, never of the machine).
    data : TrainingData or None
        Prepared rows and how batches are drawn (in place of X, y).
    validation : tuple or None
        Prepared held-out rows (with ``data``).
    penalty : callable or None
        A batch's L2 strength from its weight (e.g. :class:`~loomnet.training.data.BatchL2`).
    runner : object or None
        Where the steps run (see :mod:`loomnet.training.runner`); built from ``workers`` by default.

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> [r["epoch"] for r in ln.Trainer(ln.Sequential([ln.Dense(3)], seed=0), iris.X, iris.y, epochs=3).run().records]
    [1, 2, 3]
    """

    def __init__(
        self,
        model: Sequential,
        X: ArrayLike | None = None,
        y: ArrayLike | None = None,
        *,
        epochs: int = 100,
        batch_size: int | str | None = 32,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        validation_split: float = 0.0,
        sample_weight: ArrayLike | None = None,
        class_weight: dict[Any, float] | str | None = None,
        shuffle: bool = True,
        loss_threshold: float | None = None,
        early_stopping: EarlyStopping | int | None = None,
        callbacks: Sequence[Callback] = (),
        verbose: bool = False,
        seed: int | None = None,
        classes: ArrayLike | None = None,
        workers: int | str | None = None,
        mode: str = "sync",
        micro_batches: int | None = None,
        data: TrainingData | None = None,
        validation: tuple[Array, NDArray, NDArray] | None = None,
        penalty: Callable[[float], float] | None = None,
        runner: Any = None,
    ):
        self.model = model
        self.epochs = check_positive(epochs, "epochs", integer=True)
        self.verbose = verbose
        self.callbacks = list(callbacks)
        if not any(isinstance(cb, OverfittingMonitor) for cb in self.callbacks):
            self.callbacks.append(OverfittingMonitor())
        self.stopping = StoppingRules(loss_threshold, early_stopping)
        if seed is None:
            seed = model.seed if model.seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        self.seed = int(seed)
        if data is not None:
            given = [name for name, value in (("X", X), ("y", y), ("sample_weight", sample_weight),
                                              ("class_weight", class_weight), ("validation_data", validation_data),
                                              ("validation_split", validation_split or None), ("classes", classes))
                     if value is not None]
            if given or not shuffle:
                raise ValueError(f"data=TrainingData(...) already holds the rows, weights and order; "
                                 f"{', '.join(given) or 'shuffle'} cannot be given with it")
        else:
            if X is None or y is None:
                raise TypeError("Trainer needs the training data: X and y (or data=TrainingData(...))")
            data, validation = prepare_data(model, X, y, sample_weight=sample_weight, class_weight=class_weight,
                                            validation_data=validation_data, validation_split=validation_split,
                                            classes=classes, shuffle=shuffle, seed=self.seed)
        self.data, self.val = data, validation
        es = self.early_stopping
        if es is not None and es.monitor == "val_loss" and self.val is None:
            raise ValueError("early stopping monitors val_loss: give validation_data or validation_split "
                             "(or EarlyStopping(monitor='loss'))")
        n = data.n_samples
        if batch_size is None or batch_size in ("full", "all"):
            batch_size = n
        self.batch_size = min(check_positive(batch_size, "batch_size", integer=True), n)
        self.step_def = Step(model, data, penalty)
        self.grad = np.zeros_like(model.params)
        self.ws = StepWorkspace()
        self.stop_requested = False
        self._own_lane: Lane | None = None
        self._reset_progress()
        self.runner = runner if runner is not None else RUNNERS.make(self, workers, mode, micro_batches)

    # ----------------------------------------------------------------- public views
    @property
    def X(self) -> Array:  # noqa: N802 - the data's inputs, as the callbacks know them
        return self.data.X

    @property
    def y(self) -> NDArray:
        return self.data.y

    @property
    def sample_weight(self) -> Array | None:
        return self.data.sample_weight

    @property
    def early_stopping(self) -> EarlyStopping | None:
        return self.stopping.early_stopping

    @property
    def loss_threshold(self) -> float | None:
        return self.stopping.loss_threshold

    @property
    def parallel(self) -> Any:
        """The thread runner, or None for the plain loop."""
        return None if type(self.runner) is SerialRunner else self.runner

    @property
    def is_root(self) -> bool:
        """True in the process that prints and writes files (with MPI, rank 0 only)."""
        return self.runner.is_root

    @property
    def steps_per_epoch(self) -> int:
        """Steps in one epoch, over all lanes (asynchronous workers each step through their shard)."""
        lanes, n, bs = self.runner.lanes, self.data.n_samples, self.batch_size
        return sum(math.ceil(len(part) / bs) for part in np.array_split(np.arange(n), lanes)) if lanes > 1 \
            else math.ceil(n / bs)

    def epoch_order(self, epoch: int) -> NDArray[np.int64]:
        """The epoch's row order (see :meth:`TrainingData.epoch_order`)."""
        return self.data.epoch_order(epoch)

    def _reset_progress(self) -> None:
        """Progress state before the first step: everything a checkpoint stores."""
        self.epoch = 0
        self.step = 0
        self.lane_steps: list[int] = [0]
        self.epoch_loss_sum = 0.0
        self.epoch_samples = 0
        self.epoch_time = 0.0
        self.history = History()
        self.stopping.reset()
        self.last_finite = self.model.params.copy()

    # ----------------------------------------------------------------- the loop
    def run(self) -> History:
        """Train until max epochs, the loss threshold, early stopping or a stop request."""
        model = self.model
        model.history = self.history
        with self.runner.session(self) as lanes:
            if len(self.lane_steps) != len(lanes):
                self._relane(len(lanes))
            for cb in self.callbacks:
                cb.on_train_begin(self)
            try:
                # Overflow on the way to a NaN loss is reported once, as TrainingDivergedError.
                with np.errstate(over="ignore", invalid="ignore"):
                    while self.epoch < self.epochs and not self.runner.stopping(self):
                        if self._run_epoch(lanes):
                            break
            finally:
                for cb in self.callbacks:
                    cb.on_train_end(self)
            # inside the session: a thread runner re-raises a deferred Ctrl-C when it closes
            if self.runner.stopping(self) and self.history.stop_reason == "max_epochs":
                self.history.stop_reason = "interrupted"
            self.stopping.restore_best(model.params)
        return self.history

    def train_step(self, epoch: int, step: int, idx: NDArray[np.int64]) -> float:
        """One step of the loop on the rows ``idx``, on this thread, outside :meth:`run` (custom
        loops, tests); the loop's step exactly, dropout noise from (seed, epoch, step)."""
        if self._own_lane is None:
            self._own_lane = Lane(0, self.model.optimizer, self.model.params, self.seed, self.grad, self.ws)
        clock = UpdateClock(self.model.optimizer.iterations, 1)
        with np.errstate(over="ignore", invalid="ignore"):
            return self.step_def.run(self._own_lane, epoch, step, idx, clock, serial_gradient)

    def _run_epoch(self, lanes: list[Lane]) -> bool:
        """Run the rest of the current epoch on every lane; True when a stopping rule fired."""
        epoch, bs, runner = self.epoch, self.batch_size, self.runner
        order = self.data.epoch_order(epoch)
        shards = [order] if len(lanes) == 1 else np.array_split(order, len(lanes))
        clock = UpdateClock(self.model.optimizer.iterations, len(lanes))
        book = threading.Lock() if len(lanes) > 1 else nullcontext()
        halt = threading.Event()
        for lane in lanes:
            lane.updates = lane.staleness = lane.samples = 0
            lane.loss_sum = 0.0

        # only the callbacks that have a per-batch hook are called per batch: the hot path stays short
        on_batch = [cb.on_batch_end for cb in self.callbacks if type(cb).on_batch_end is not Callback.on_batch_end]
        run_step, gradient, stopping, fused = self.step_def.run, runner.gradient, runner.stopping, runner.applies_update
        one_lane = len(lanes) == 1

        def work(t: int) -> None:
            lane, shard, done = lanes[t], shards[t], self.lane_steps
            n_steps = math.ceil(len(shard) / bs)
            while done[t] < n_steps:
                if stopping(self) or (not one_lane and halt.is_set()):
                    return
                step = done[t]
                idx = shard[step * bs:(step + 1) * bs]
                loss = run_step(lane, epoch, step, idx, clock, gradient, fused)
                if one_lane or on_batch:  # callbacks see (and checkpoints save) the counters as of their batch
                    with book:
                        self._batch_done(t, epoch, len(idx), loss, on_batch)
                else:  # asynchronous lanes without per-batch callbacks keep their own sums: nothing to lock
                    lane.loss_sum += loss * len(idx)
                    lane.samples += len(idx)
                    done[t] += 1

        t0 = time.perf_counter()
        try:
            runner.run_lanes(work, on_error=halt.set)
        except TrainingDivergedError:
            if not np.isfinite(self.model.params).all():
                self.model.set_params(self.last_finite)
            raise
        finally:
            self.epoch_time += time.perf_counter() - t0
            if not one_lane and not on_batch:
                self.epoch_loss_sum += sum(lane.loss_sum for lane in lanes)
                self.epoch_samples += sum(lane.samples for lane in lanes)
                self.step = sum(self.lane_steps)
            if not one_lane:  # asynchronous lanes counted their updates on the shared clock
                self.model.optimizer.iterations = clock.updates
        if not one_lane:
            total = sum(lane.updates for lane in lanes)
            self.lane_stats = {"updates_per_worker": [lane.updates for lane in lanes],
                               "mean_staleness": sum(lane.staleness for lane in lanes) / total if total else 0.0}
        if runner.stopping(self):
            return True
        return self._finish_epoch(lanes)

    def _batch_done(self, lane: int, epoch: int, n: int, loss: float, on_batch: list[Callable[..., Any]]) -> None:
        """Per-batch bookkeeping and callbacks (under the bookkeeping lock when lanes run at once)."""
        self.epoch_loss_sum += loss * n
        self.epoch_samples += n
        self.lane_steps[lane] += 1
        step = self.step
        self.step = step + 1
        for hook in on_batch:
            hook(self, epoch, step, n, loss)

    def _finish_epoch(self, lanes: list[Lane]) -> bool:
        model, opt = self.model, self.model.optimizer
        train_loss = self.epoch_loss_sum / max(self.epoch_samples, 1)
        record: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "loss": train_loss,
            "lr": float(opt.schedule(self.epoch, max(opt.iterations - 1, 0))),
            "time": self.epoch_time,
            "samples_per_s": self.epoch_samples / max(self.epoch_time, 1e-12),
        }
        if len(lanes) > 1:
            record.update(self.lane_stats)
        refresh_statistics(self)  # BatchNorm's running statistics under this epoch's weights, before validation
        if self.val is not None:
            record.update(self.validation_metrics())
        if np.isfinite(model.params).all():
            np.copyto(self.last_finite, model.params)
        self.history.records.append(record)
        self.epoch, self.step = self.epoch + 1, 0
        self.lane_steps = [0] * len(lanes)
        self.epoch_loss_sum, self.epoch_samples, self.epoch_time = 0.0, 0, 0.0

        opt.schedule.observe(self.epoch, record.get("val_loss", train_loss))
        reason, improved = self.stopping.after_epoch(record, model.params)
        if improved:
            self.history.best_epoch = record["epoch"]
        stop = reason is not None
        if stop:
            self.history.stop_reason = reason
        if self.verbose:
            print(format_record(record, self.epochs), flush=True)
        for cb in self.callbacks:
            if cb.on_epoch_end(self, record):
                self.history.stop_reason, stop = "callback", True
        return self.runner.end_epoch(self, lanes, stop)

    def validation_metrics(self) -> dict[str, float]:
        """val_loss and the task's headline metric on the validation set."""
        Xv, yv, _ = self.val
        return validation_scores(self.model, self.runner.validation_output(self.model, Xv), yv)

    def _relane(self, lanes: int) -> None:
        """A run resumed with another number of lanes than the checkpoint's: each lane's progress
        through its shard is known only for the lanes that wrote it, so a part-done epoch starts over."""
        if self.step:
            warnings.warn(f"the checkpoint was written in the middle of epoch {self.epoch + 1} by "
                          f"{len(self.lane_steps)} lane(s) and this run has {lanes}: that epoch starts over",
                          RuntimeWarning, stacklevel=user_stacklevel())
        self.step, self.lane_steps = 0, [0] * lanes
        self.epoch_loss_sum, self.epoch_samples, self.epoch_time = 0.0, 0, 0.0

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Progress, optimiser and stopping state; with the model's params it resumes exactly."""
        stopping = self.stopping.state_dict()
        runner = self.runner.state_dict()
        return {**({"runner": runner} if runner else {}),
            "epoch": self.epoch,
            "step": self.step,
            "lane_steps": list(self.lane_steps),
            "seed": self.seed,
            "epoch_loss_sum": self.epoch_loss_sum,
            "epoch_samples": self.epoch_samples,
            "epoch_time": self.epoch_time,
            "history": self.history.to_dict(),
            "best": stopping["best"],
            "wait": stopping["wait"],
            "best_params": stopping["best_params"],
            "last_finite": self.last_finite.copy(),
            "optimizer": self.model.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # The optimiser first: it may refuse an old state, and then nothing else has changed.
        self.model.optimizer.load_state_dict(state["optimizer"])
        self.runner.check_state(state.get("runner") or state.get("distributed") or {})
        self.epoch, self.step, self.seed = int(state["epoch"]), int(state["step"]), int(state["seed"])
        self.lane_steps = [int(s) for s in state.get("lane_steps", [self.step])]
        self.epoch_loss_sum = float(state["epoch_loss_sum"])
        self.epoch_samples = int(state["epoch_samples"])
        self.epoch_time = float(state.get("epoch_time", 0.0))
        self.history = History.from_dict(state["history"])
        self.stopping.load_state_dict(state, self.model.dtype)
        self.last_finite = np.array(state["last_finite"], dtype=self.model.dtype)
