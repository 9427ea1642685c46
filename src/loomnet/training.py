"""The training loop: mini-batch gradient descent with validation, stopping rules and history.

``batch_size`` covers the article's three flavours: n (full batch), k (mini-batch) and 1
(stochastic). Every random stream derives from (seed, epoch, step), so a run can be resumed
from any step and gives the same parameters bit for bit.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_array, check_consistent_length, check_positive
from .network import StepWorkspace
from .preprocessing import train_test_split

if TYPE_CHECKING:
    from .network import Sequential
    from .optimizers import Optimizer

Array = NDArray[np.floating]
_SHUFFLE_STREAM, _DROPOUT_STREAM = 0, 1


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the model keeps its last finite parameters."""

    def __init__(self, epoch: int, step: int, loss: float):
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(
            f"training diverged at epoch {epoch}, step {step}: the loss became {loss}; "
            "the model keeps its last finite parameters (try a lower learning rate or clip_norm)"
        )


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int = 10
    min_delta: float = 0.0
    restore_best_weights: bool = True
    monitor: str = "val_loss"

    def __post_init__(self) -> None:
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {self.patience!r}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")
        if self.monitor not in ("val_loss", "loss"):
            raise ValueError(f"monitor must be 'val_loss' or 'loss', got {self.monitor!r}")


class History:
    """Per-epoch records: loss, val_loss, validation metrics, learning rate, wall time."""

    def __init__(self, records: list[dict[str, Any]] | None = None):
        self.records: list[dict[str, Any]] = list(records or [])
        self.stop_reason: str = "max_epochs"
        self.best_epoch: int | None = None
        self.overfit_epoch: int | None = None  # first epoch an OverfittingWarning fired
        self.notes: list[str] = []

    def __getitem__(self, key: str) -> list[Any]:
        if not self.records or key not in self.records[-1]:
            raise KeyError(f"history has no column {key!r}; columns: {self.columns}")
        return [r.get(key) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def columns(self) -> list[str]:
        return list(self.records[-1]) if self.records else []

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "stop_reason": self.stop_reason, "best_epoch": self.best_epoch,
                "overfit_epoch": self.overfit_epoch, "notes": self.notes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        h = cls(d.get("records"))
        h.stop_reason = d.get("stop_reason", "max_epochs")
        h.best_epoch, h.notes = d.get("best_epoch"), d.get("notes", [])
        h.overfit_epoch = d.get("overfit_epoch")
        return h

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        return f"History(epochs={len(self)}, stop_reason={self.stop_reason!r}, last={last})"


class Callback:
    """Hooks into training; ``on_epoch_end`` may return True to stop."""

    def on_train_begin(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, epoch: int, step: int, batch_size: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> bool | None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


class OverfittingWarning(UserWarning):
    """Validation loss rose for several epochs in a row while training loss fell."""


class OverfittingMonitor(Callback):
    """Warn when val_loss has risen ``patience`` epochs in a row while the training loss fell.

    Installed by every Trainer (patience 5); pass your own in ``callbacks`` to change k, or
    ``OverfittingMonitor(None)`` to switch it off. It reads only the history records, so a
    resumed run warns exactly as an uninterrupted one. The warning is a ``warnings.warn``
    (category ``OverfittingWarning``), once per streak; ``history.overfit_epoch`` holds the
    first epoch it fired and ``history.notes`` a line per warning.
    """

    def __init__(self, patience: int | None = 5):
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
            raise ValueError(f"patience must be an integer >= 1 or None, got {patience!r}")
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        records = trainer.history.records
        if self.patience is None or "val_loss" not in record:
            return
        streak = 0
        for before, after in zip(records[-2::-1], records[:0:-1], strict=True):
            if not (after["val_loss"] > before["val_loss"] and after["loss"] < before["loss"]):
                break
            streak += 1
        if streak != self.patience:
            return
        epoch = record["epoch"]
        first = records[-1 - streak]
        message = (f"possible overfitting: validation loss rose {streak} epochs in a row "
                   f"({first['val_loss']:.4g} -> {record['val_loss']:.4g}, epochs {first['epoch']}-{epoch}) "
                   f"while training loss fell ({first['loss']:.4g} -> {record['loss']:.4g})")
        if trainer.early_stopping is None:
            message += "; early_stopping, more data, dropout or l2 would help"
        history = trainer.history
        if history.overfit_epoch is None:
            history.overfit_epoch = epoch
        history.notes.append(f"epoch {epoch}: {message}")
        warnings.warn(message, OverfittingWarning, stacklevel=2)


class Trainer:
    """Runs gradient descent on a model; holds all state a checkpoint needs to resume exactly.

    ``workers`` (an int or "auto"), ``mode`` ("sync", "hogwild", "locked") and ``micro_batches``
    train on several threads (see :mod:`loomnet.parallel`); ``workers=None`` is this thread only.
    """

    parallel = None  # set by workers=...: the loomnet.parallel engine that runs steps or epochs
    gathers_rows_alone = False  # a subclass's gather() works row by row, from any thread (see _workers_take_steps)

    def __init__(
        self,
        model: Sequential,
        X: ArrayLike,
        y: ArrayLike,
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
    ):
        self.model = model
        self.epochs = check_positive(epochs, "epochs", integer=True)
        self.shuffle = bool(shuffle)
        self.verbose = verbose
        self.callbacks = list(callbacks)
        if not any(isinstance(cb, OverfittingMonitor) for cb in self.callbacks):
            self.callbacks.append(OverfittingMonitor())
        self._set_stopping_rules(loss_threshold, early_stopping)
        if seed is None:
            seed = model.seed if model.seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        self.seed = int(seed)

        X_arr = check_array(X, name="X")
        y_arr = np.asarray(y)
        check_consistent_length(X_arr, y_arr)
        w_arr = None if sample_weight is None else _check_weights(sample_weight, X_arr.shape[0])
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            classify = model.loss.task != "regression" and y_arr.ndim == 1
            parts = train_test_split(X_arr, y_arr, np.arange(len(y_arr)), test_size=validation_split,
                                     stratify=y_arr if classify and _stratifiable(y_arr) else None,
                                     seed=self.seed)
            X_arr, Xv, y_arr, yv, tr_idx, _ = parts
            w_arr = None if w_arr is None else w_arr[tr_idx]
            validation_data = (Xv, yv)
        if self.early_stopping is not None and self.early_stopping.monitor == "val_loss" and validation_data is None:
            raise ValueError("early stopping monitors val_loss: give validation_data or validation_split "
                             "(or EarlyStopping(monitor='loss'))")

        # Preprocessing is fitted here, on the training part only: validation data never leaks in.
        self.X = model.prepare_X(X_arr, fit=True)
        self.y = model.prepare_y(y_arr, fit=True, classes=classes)
        self.sample_weight = _combine_weights(model, w_arr, class_weight, self.y)
        self.val = None
        if validation_data is not None:
            Xv, yv = validation_data
            Xv_p = model.prepare_X(Xv)
            yv_p = model.prepare_y(yv)
            check_consistent_length(Xv_p, yv_p, "validation y")
            self.val = (Xv_p, yv_p, np.asarray(yv))

        n = self.X.shape[0]
        if batch_size is None or batch_size in ("full", "all"):
            batch_size = n
        self.batch_size = min(check_positive(batch_size, "batch_size", integer=True), n)
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        self.grad = np.zeros_like(model.params)
        self.ws = StepWorkspace()
        self._reset_progress()
        self.stop_requested = False
        # workers=None is the plain one-thread loop; otherwise see loomnet.parallel
        if workers is not None:
            from .parallel.engine import attach

            self.parallel = attach(self, workers, mode, micro_batches)

    def _set_stopping_rules(self, loss_threshold: float | None, early_stopping: EarlyStopping | int | None) -> None:
        """Validate and store the loss threshold and early stopping (an int is a patience)."""
        finite_number = isinstance(loss_threshold, (int, float)) and math.isfinite(loss_threshold)
        if loss_threshold is not None and not finite_number:
            raise ValueError(f"loss_threshold must be a finite number, got {loss_threshold!r}")
        self.loss_threshold = loss_threshold
        if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
            early_stopping = EarlyStopping(patience=early_stopping)
        self.early_stopping = early_stopping

    def _reset_progress(self) -> None:
        """Progress state before the first step: everything a checkpoint stores."""
        self.epoch = 0
        self.step = 0
        self._epoch_loss_sum = 0.0
        self._epoch_samples = 0
        self._epoch_time = 0.0
        self.history = History()
        self._best: float = math.inf
        self._wait = 0
        self._best_params: Array | None = None
        self._last_finite = self.model.params.copy()

    # ----------------------------------------------------------------- random streams
    def epoch_order(self, epoch: int) -> NDArray[np.int64]:
        """Sample order for an epoch: a permutation derived from (seed, epoch) alone."""
        n = self.X.shape[0]
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, _SHUFFLE_STREAM, epoch]).permutation(n)

    def dropout_rng(self, epoch: int, step: int, index: int = 0) -> np.random.Generator | None:
        """Dropout stream for one (micro-)batch, derived from (seed, epoch, step, index)."""
        if not self.model.has_dropout:
            return None
        return np.random.default_rng([self.seed, _DROPOUT_STREAM, epoch, step, index])

    # ----------------------------------------------------------------- one step
    def gather(self, idx: NDArray[np.int64], ws: StepWorkspace | None = None) -> tuple[Array, NDArray, Array | None]:
        """Copy a batch into reusable buffers (no allocation once shapes repeat).

        ``mode="clip"``: with the default mode NumPy stages ``out`` in a temporary copy; the
        indices come from ``epoch_order`` and are always in range. ``ws``: the calling worker's
        buffers (default: the trainer's own)."""
        ws = self.ws if ws is None else ws
        Xb = self.X.take(idx, axis=0, mode="clip", out=ws.get("Xb", (len(idx), self.X.shape[1]), self.X.dtype))
        y_shape = (len(idx),) + self.y.shape[1:]
        yb = self.y.take(idx, axis=0, mode="clip", out=ws.get("yb", y_shape, self.y.dtype))
        wb = None
        if self.sample_weight is not None:
            w = self.sample_weight
            wb = w.take(idx, mode="clip", out=ws.get("wb", (len(idx),), w.dtype))
        return Xb, yb, wb

    def compute_gradient(self, Xb: Array, yb: NDArray, wb: Array | None, epoch: int, step: int,
                         scale: float = 1.0) -> float:
        """Loss of the batch; writes ``scale`` × the batch gradient into ``self.grad``."""
        if self.parallel is not None:
            return self.parallel.compute_gradient(Xb, yb, wb, epoch, step, scale)
        loss, _ = self.model.loss_and_grad(
            self.model.params, Xb, yb, wb, grad=self.grad, rng=self.dropout_rng(epoch, step), ws=self.ws,
            grad_scale=scale,
        )
        return loss

    def batch_gradient(self, epoch: int, step: int, idx: NDArray[np.int64], scale: float) -> float:
        """Loss of the batch with rows ``idx``; ``scale`` × its gradient into ``self.grad``.
        (The sharded trainer overrides this: its rows live on several ranks.)"""
        Xb, yb, wb = self.gather(idx)
        return self.compute_gradient(Xb, yb, wb, epoch, step, scale)

    def train_step(self, epoch: int, step: int, idx: NDArray[np.int64]) -> float:
        opt = self.model.optimizer
        lr = opt.schedule(epoch, opt.iterations)
        # SGD's update is linear in lr·g: let the backward pass scale the gradient (a batch ×
        # outputs multiply) instead of the optimiser (a pass over every parameter).
        fold = opt.folds_learning_rate
        scale = lr if fold else 1.0
        if self._workers_take_steps(opt):
            update = opt.begin_step(self.model.params, lr, grad_scaled=fold)
            try:
                loss = self.parallel.train_step(idx, epoch, step, scale, update)  # applied unless not finite
            except BaseException:
                if not update.applied:  # a worker failed before any update: the step never happened
                    update.cancel()
                raise
            if not math.isfinite(loss):
                update.cancel()
                self._diverged(epoch, step, loss)
            return loss
        loss = self.batch_gradient(epoch, step, idx, scale)
        if not math.isfinite(loss):
            self._diverged(epoch, step, loss)
        opt.step(self.model.params, self.grad, lr, grad_scaled=fold)
        return loss

    def _workers_take_steps(self, opt: Optimizer) -> bool:
        return self.parallel is not None and self.parallel.runs_sync_steps and self._whole_steps_allowed(opt)

    def _whole_steps_allowed(self, opt: Optimizer) -> bool:
        """Whether sync workers may run whole steps, update included, each gathering its own slices.
        Not with clipping, which needs the whole gradient's norm before any update. Not for a
        subclass that changes how a batch is gathered or its gradient made: the workers would not
        call those overrides on the whole batch (set ``gathers_rows_alone`` on a subclass whose
        ``gather`` treats each row on its own and is thread-safe)."""
        cls = type(self)
        return (opt.clip_norm is None
                and cls.batch_gradient is Trainer.batch_gradient and cls.compute_gradient is Trainer.compute_gradient
                and (cls.gather is Trainer.gather or cls.gathers_rows_alone))

    def _diverged(self, epoch: int, step: int, loss: float) -> None:
        if not np.isfinite(self.model.params).all():
            self.model.set_params(self._last_finite)
        raise TrainingDivergedError(epoch + 1, step + 1, loss)

    # ----------------------------------------------------------------- the loop
    def run(self) -> History:
        """Train until max epochs, the loss threshold, early stopping or a stop request."""
        if self.parallel is not None:
            with self.parallel.session():
                return self._run()
        return self._run()

    def _run(self) -> History:
        model = self.model
        model.history = self.history
        for cb in self.callbacks:
            cb.on_train_begin(self)
        try:
            # Overflow on the way to a NaN loss is reported once, as TrainingDivergedError.
            with np.errstate(over="ignore", invalid="ignore"):
                while self.epoch < self.epochs and not self.stop_requested:
                    if self._run_epoch():
                        break
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        if self.stop_requested and self.history.stop_reason == "max_epochs":
            self.history.stop_reason = "interrupted"
        es = self.early_stopping
        if es is not None and es.restore_best_weights and self._best_params is not None:
            model.set_params(self._best_params)
        return self.history

    def _run_epoch(self) -> bool:
        """Run the rest of the current epoch; True when a stopping rule fired."""
        if self.parallel is not None and self.parallel.runs_epochs:
            return self.parallel.run_epoch()
        epoch, bs = self.epoch, self.batch_size
        order = self.epoch_order(epoch)
        t0 = time.perf_counter()
        while self.step < self.steps_per_epoch:
            if self.stop_requested:
                self._epoch_time += time.perf_counter() - t0
                return True
            step = self.step
            idx = order[step * bs:(step + 1) * bs]
            loss = self.train_step(epoch, step, idx)
            self._epoch_loss_sum += loss * len(idx)
            self._epoch_samples += len(idx)
            self.step += 1
            for cb in self.callbacks:
                cb.on_batch_end(self, epoch, step, len(idx), loss)
        self._epoch_time += time.perf_counter() - t0
        return self._finish_epoch()

    def _finish_epoch(self) -> bool:
        model, opt = self.model, self.model.optimizer
        train_loss = self._epoch_loss_sum / max(self._epoch_samples, 1)
        record: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "loss": train_loss,
            "lr": float(opt.schedule(self.epoch, max(opt.iterations - 1, 0))),
            "time": self._epoch_time,
            "samples_per_s": self._epoch_samples / max(self._epoch_time, 1e-12),
        }
        if self.val is not None:
            record.update(self.validation_metrics())
        if np.isfinite(model.params).all():
            np.copyto(self._last_finite, model.params)
        self.history.records.append(record)
        self.epoch += 1
        self.step = 0
        self._epoch_loss_sum, self._epoch_samples, self._epoch_time = 0.0, 0, 0.0

        monitored = record.get("val_loss", train_loss)
        opt.schedule.observe(self.epoch, monitored)
        stop = False
        es = self.early_stopping
        if es is not None:
            value = record[es.monitor]
            if value < self._best - es.min_delta:
                self._best, self._wait = value, 0
                self.history.best_epoch = record["epoch"]
                if es.restore_best_weights:
                    self._best_params = model.params.copy()
            else:
                self._wait += 1
                if self._wait >= es.patience:
                    self.history.stop_reason, stop = "early_stopping", True
        if self.loss_threshold is not None and train_loss <= self.loss_threshold:
            self.history.stop_reason, stop = "loss_threshold", True
        if self.verbose:
            print(_format_record(record, self.epochs), flush=True)
        for cb in self.callbacks:
            if cb.on_epoch_end(self, record):
                self.history.stop_reason, stop = "callback", True
        return stop

    def validation_metrics(self) -> dict[str, float]:
        """val_loss and the task's headline metric on the validation set."""
        Xv, yv, _ = self.val
        model = self.model
        out = model._raw_output(Xv)
        result = {"val_loss": model.loss.value(out, yv)}
        if model.loss.task == "regression":
            from .metrics import r2_score

            result["val_r2"] = r2_score(yv, out)
        elif yv.ndim == 1 or yv.shape[1] == 1:
            pred = model.loss_predictions(out)
            result["val_accuracy"] = float(np.mean(pred == yv.reshape(-1)))
        return result

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Progress, optimiser and stopping state; with the model's params it resumes exactly."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "seed": self.seed,
            "epoch_loss_sum": self._epoch_loss_sum,
            "epoch_samples": self._epoch_samples,
            "epoch_time": self._epoch_time,
            "history": self.history.to_dict(),
            "best": self._best,
            "wait": self._wait,
            "best_params": None if self._best_params is None else self._best_params.copy(),
            "last_finite": self._last_finite.copy(),
            "optimizer": self.model.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # The optimiser first: it may refuse an old state, and then nothing else has changed.
        self.model.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.seed = int(state["epoch"]), int(state["step"]), int(state["seed"])
        self._epoch_loss_sum = float(state["epoch_loss_sum"])
        self._epoch_samples = int(state["epoch_samples"])
        self._epoch_time = float(state.get("epoch_time", 0.0))
        self.history = History.from_dict(state["history"])
        self._best, self._wait = float(state["best"]), int(state["wait"])
        bp = state.get("best_params")
        self._best_params = None if bp is None else np.array(bp, dtype=self.model.dtype)
        self._last_finite = np.array(state["last_finite"], dtype=self.model.dtype)


def fit(model: Sequential, X: ArrayLike, y: ArrayLike, **kwargs: Any) -> History:
    """Train ``model`` on (X, y) and return its History; keyword options as for :class:`Trainer`."""
    return Trainer(model, X, y, **kwargs).run()


def _format_record(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_")]
    parts.append(f"{record['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts)


def _check_weights(sample_weight: ArrayLike, n: int) -> Array:
    w = check_array(sample_weight, name="sample_weight", ndim=1).astype(np.float64)
    if w.shape[0] != n:
        raise ValueError(f"sample_weight has {w.shape[0]} entries but X has {n} samples")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be non-negative with a positive sum")
    return w


def _combine_weights(model: Sequential, w: Array | None, class_weight: Any, y_enc: NDArray) -> Array | None:
    """Per-sample weights times class weights ('balanced' = n / (k · count))."""
    if class_weight is None:
        return None if w is None else w.astype(model.dtype)
    if model.classes_ is None:
        raise ValueError("class_weight needs a classification loss with class labels")
    codes = y_enc.reshape(-1).astype(np.int64)
    k = len(model.classes_)
    if class_weight == "balanced":
        counts = np.bincount(codes, minlength=k).astype(np.float64)
        per_class = np.where(counts > 0, len(codes) / (k * np.maximum(counts, 1)), 0.0)
    elif isinstance(class_weight, dict):
        unknown = set(class_weight) - set(model.classes_.tolist())
        if unknown:
            raise ValueError(f"class_weight names unknown classes {sorted(map(str, unknown))}; "
                             f"classes are {model.classes_.tolist()}")
        per_class = np.array([float(class_weight.get(c, 1.0)) for c in model.classes_.tolist()])
        if (per_class < 0).any():
            raise ValueError("class weights must be non-negative")
    else:
        raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
    combined = per_class[codes] * (1.0 if w is None else w)
    return combined.astype(model.dtype)


def _stratifiable(y: NDArray) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return bool(counts.min() >= 2)

