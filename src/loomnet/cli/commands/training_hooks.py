"""What runs alongside ``loomnet train``: the progress bar, the training-set metric, checkpoints, Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...training import Callback


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """'epoch 3/10  loss 0.41  accuracy 0.88  val_loss 0.45  val_accuracy 0.86  12,345 samples/s'."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    parts += [f"{k} {record[k]:.4f}" for k in ("accuracy", "r2") if k in record]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_")]
    parts.append(f"{record['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar per epoch (running loss, last validation metric, samples/s, ETA) and a line per epoch."""

    def __init__(self, out: Any, epochs: int):
        self.out, self.epochs = out, epochs
        self.bar: Any = None
        self.samples, self.loss_sum, self.started = 0, 0.0, 0.0

    def on_batch_end(self, trainer: Any, epoch: int, step: int, batch_size: int, loss: float) -> None:
        if self.out.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=trainer.steps_per_epoch, initial=step, desc=f"epoch {epoch + 1}/{self.epochs}",
                            unit="batch", leave=False, file=sys.stderr, disable=None, dynamic_ncols=True)
            self.samples, self.loss_sum, self.started = 0, 0.0, time.perf_counter()
        self.samples += batch_size
        self.loss_sum += loss * batch_size
        self.bar.update(1)
        if step % 10 == 0 or step + 1 == trainer.steps_per_epoch:
            rate = self.samples / max(time.perf_counter() - self.started, 1e-9)
            parts = [f"loss {self.loss_sum / self.samples:.4f}"]
            last = trainer.history.records[-1] if trainer.history.records else {}
            parts += [f"{k} {v:.4f}" for k, v in last.items() if k in ("val_accuracy", "val_r2")]
            parts.append(f"{rate:,.0f} samples/s")
            self.bar.set_postfix_str(", ".join(parts), refresh=False)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self._close()
        if self.out.quiet:
            return
        history = trainer.history.records
        per_epoch = sum(r["time"] for r in history) / max(len(history), 1)
        eta = per_epoch * (self.epochs - record["epoch"])
        self.out.progress(f"{format_epoch(record, self.epochs)}  eta {eta:.0f}s")

    def on_train_end(self, trainer: Any) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrainingMetric(Callback):
    """Adds the training-set accuracy (or R²) to each epoch's record, measured on up to ``rows`` rows.

    The rows are spread evenly over the training split and the same every epoch, so the curve
    is comparable with the validation one at the cost of one forward pass over a sample.
    """

    def __init__(self, rows: int = 2000):
        self.rows = rows

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        X, y = getattr(trainer, "X", None), getattr(trainer, "y", None)
        if X is None or y is None or not len(X):
            return
        model = trainer.model
        sample = np.unique(np.linspace(0, len(X) - 1, min(len(X), self.rows)).astype(np.int64))
        Xs, ys = X[sample], y[sample]
        out = np.concatenate([model.forward(Xs[i:i + 512])[0] for i in range(0, len(Xs), 512)])
        if model.loss.task == "regression":
            from ...engine.metrics import r2_score

            record["r2"] = r2_score(ys, out)  # in scaled target units: R² is unchanged by the scaling
        elif ys.ndim == 1 or ys.shape[1] == 1:
            record["accuracy"] = float(np.mean(model.loss_predictions(out) == ys.reshape(-1)))


class Checkpointer(Callback):
    """Saves a checkpoint every ``every`` epochs, and right after the step during which a stop was requested.

    Trainers that report no steps (Hogwild workers run whole epochs) keep the last epoch checkpoint.
    """

    def __init__(self, path: Path, every: int, settings: dict[str, Any], save: Any):
        self.path, self.every, self.settings, self.save = path, every, settings, save
        self.saved_at: tuple[int, int] | None = None  # (epoch, step) of the last checkpoint written
        self.saved_on_stop = False

    def on_batch_end(self, trainer: Any, epoch: int, step: int, batch_size: int, loss: float) -> None:
        if trainer.stop_requested:
            self._save(trainer)
            self.saved_on_stop = True

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        if trainer.stop_requested or trainer.epoch % self.every == 0:
            self._save(trainer)
            self.saved_on_stop = trainer.stop_requested

    def _save(self, trainer: Any) -> None:
        self.save(trainer, self.path, settings=self.settings)
        self.saved_at = (trainer.epoch, trainer.step)


def resume_hint(checkpointer: Checkpointer | None, directory: str | None) -> str:
    """What an interrupted run left to resume from, for its last message."""
    if checkpointer is None:
        return "; nothing was saved (train with --checkpoint-dir DIR to keep the work and --resume it)"
    if checkpointer.saved_on_stop:
        return f"; checkpoint saved in {directory}, continue with --resume"
    if checkpointer.saved_at is not None:
        epoch, step = checkpointer.saved_at
        position = f"epoch {epoch + 1}, step {step}" if step else f"the start of epoch {epoch + 1}"
        return f"; the last checkpoint (at {position}) is in {directory}, continue with --resume"
    if checkpointer.path.exists():
        return f"; the checkpoint in {directory} is unchanged, continue with --resume"
    return "; no checkpoint was written yet"


class stop_on_signals:
    """Ctrl-C (or SIGTERM) asks the trainer to stop after the current step; a second Ctrl-C aborts."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.trainer.stop_requested:
            raise KeyboardInterrupt
        self.trainer.stop_requested = True

    def __enter__(self) -> stop_on_signals:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread receives signals
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def tensorboard_logger(directory: str) -> Callback:
    """``--log-tensorboard DIR``: the TensorBoard logger, or a one-line error before any training."""
    from ...training import TensorBoardLogger
    from ..main import UsageError

    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--log-tensorboard {directory}: it is a file, not a directory")
    parent = path if path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--log-tensorboard {directory}: permission denied")
    try:
        return TensorBoardLogger(directory)
    except ImportError as exc:
        raise UsageError(f"--log-tensorboard: {exc}") from None
