"""Data-parallel training across MPI ranks: each rank computes its part of every global batch.

The global batch and its order are those of a one-process :class:`~loomnet.training.Trainer`
with the same seed. A rank reads only the rows of its data shards; for each step it computes
the gradient of the batch rows it owns with the normaliser of the WHOLE batch, so the local
gradients sum to the batch gradient. By default they are summed with one in-place Allreduce
of a contiguous buffer [gradient, loss, stop flag]. With ``deterministic=True`` each shard's
gradient is gathered to every rank and the shards are added in shard order, which gives the
same bits for any number of ranks (and, with one shard, the bits of the plain Trainer).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from .._validation import check_array, check_positive
from ..metrics import r2_score
from ..network import StepWorkspace
from ..parallel.pool import WorkerPool
from ..preprocessing import train_test_split
from ..training import (
    _SHUFFLE_STREAM,
    Callback,
    EarlyStopping,
    History,
    OverfittingMonitor,
    Trainer,
    TrainingDivergedError,
    _check_weights,
    _combine_weights,
    _stratifiable,
)
from .comm import Collective, abort_on_error, agree_on_errors, get_collective, plan_threads
from .data import ShardPlan, fit_scaler_on_shards, open_rows, read_rows, row_chunks

if TYPE_CHECKING:
    from ..network import Sequential

Array = NDArray[np.floating]
_EXTRA_BYTES = 16  # per gathered shard block: the float64 loss and the float64 stop flag
DETERMINISTIC_SHARDS = 8  # default shard count of the deterministic reduction: the same bits on 1..8 ranks


class DistributedTrainer(Trainer):
    """A :class:`Trainer` whose every step is shared by the ranks of an MPI communicator.

    ``X`` is the full training matrix as an array, a memory map or a ``.npy`` path (memory-mapped):
    a rank copies only its own rows. ``y`` and ``sample_weight`` (one value per row) are read whole.
    ``micro_batches`` is the number of fixed data shards (default: the number of ranks, or at
    least 8 when deterministic); in deterministic mode it fixes the reduction order, so the same
    value gives the same bits on any number of ranks up to it.
    ``threads`` threads per rank split the rank's rows; BLAS threads are limited so that
    ranks × threads × BLAS threads per node stays within its cores. ``timeout``: a rank that
    waits longer than that (seconds) for the others in a step aborts the job (default: wait).
    Rank 0 alone runs the callbacks and prints; stopping decisions are agreed by all ranks. A
    callback must not change the parameters or the optimiser (only rank 0 would): the ranks
    compare a parameter checksum after every epoch and raise if they differ.
    """

    def __init__(
        self,
        model: Sequential,
        X: ArrayLike | str,
        y: ArrayLike,
        *,
        comm: Any = None,
        deterministic: bool = False,
        micro_batches: int | None = None,
        threads: int = 1,
        blas_threads: int | None = None,
        timeout: float | None = None,
        epochs: int = 100,
        batch_size: int | str | None = 32,
        validation_data: tuple[ArrayLike | str, ArrayLike] | None = None,
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
    ):
        self.collective: Collective = get_collective(comm)
        if timeout is not None:
            if not timeout > 0:
                raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
            self.collective.timeout = float(timeout)
        rank, size = self.collective.rank, self.collective.size
        self.deterministic = bool(deterministic)
        self.threads = check_positive(threads, "threads", integer=True)
        if micro_batches is None:
            micro_batches = max(size, DETERMINISTIC_SHARDS) if self.deterministic else size
        self.micro_batches = check_positive(micro_batches, "micro_batches", integer=True)
        self.blas_threads = plan_threads(self.collective, self.threads, blas_threads)

        self.model = model
        self.epochs = check_positive(epochs, "epochs", integer=True)
        self.shuffle = bool(shuffle)
        self.verbose = bool(verbose) and rank == 0
        self.callbacks = list(callbacks) if rank == 0 else []
        if rank == 0 and not any(isinstance(cb, OverfittingMonitor) for cb in self.callbacks):
            self.callbacks.append(OverfittingMonitor())
        self._set_stopping_rules(loss_threshold, early_stopping)
        if seed is None:
            seed = model.seed if model.seed is not None else self.collective.bcast(
                int(np.random.SeedSequence().entropy % 2**63))
        self.seed = int(seed)

        # Each phase is local to a rank; failures are agreed before the next collective.
        loaded = self._agreed(self._read_shards, "loading the data shards",
                              X, y, validation_data, validation_split, sample_weight)
        if model.preprocess is not None and not getattr(model.preprocess, "fitted_", False):
            fit_scaler_on_shards(model.preprocess, [loaded[0][s] for s in self.plan.local_slices()],
                                 self.collective)
        self._agreed(self._prepare_shards, "preparing the data shards", *loaded, class_weight, classes)
        if self.early_stopping is not None and self.early_stopping.monitor == "val_loss" and self.val is None:
            raise ValueError("early stopping monitors val_loss: give validation_data or validation_split "
                             "(or EarlyStopping(monitor='loss'))")

        n = self.n_samples
        if batch_size is None or batch_size in ("full", "all"):
            batch_size = n
        self.batch_size = min(check_positive(batch_size, "batch_size", integer=True), n)
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        self._allocate_buffers()
        self._reset_progress()
        self._local_stop = False
        self._agreed_stop = False
        self._pool: WorkerPool | None = None

    # ----------------------------------------------------------------- data
    def _agreed(self, phase, what: str, *args):
        """Run a local phase on every rank; if any rank fails, every rank raises (none is left waiting)."""
        result, error = None, None
        try:
            result = phase(*args)
        except Exception as exc:
            error = exc
        agree_on_errors(self.collective, error, what)
        return result

    def _read_shards(self, X, y, validation_data, validation_split, sample_weight):
        """Read this rank's training rows and validation rows; labels and weights are read whole."""
        model, rank, size = self.model, self.collective.rank, self.collective.size
        rows_source = open_rows(X)
        if rows_source.ndim != 2:
            raise ValueError(f"X must be 2-D (samples × features), got shape {rows_source.shape}")
        y_all = np.asarray(y)
        n_all = rows_source.shape[0]
        if y_all.shape[0] != n_all:
            raise ValueError(f"X has {n_all} samples but y has {y_all.shape[0]}")
        w_all = None if sample_weight is None else _check_weights(sample_weight, n_all)
        train_rows: NDArray[np.int64] | None = None
        val_raw, y_val = None, None
        self._val_counts: list[int] = []
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            classify = model.loss.task != "regression" and y_all.ndim == 1
            train_rows, val_rows = train_test_split(
                np.arange(n_all), test_size=validation_split, seed=self.seed,
                stratify=y_all if classify and _stratifiable(y_all) else None)
            val_source, y_val = rows_source, y_all[val_rows]
            y_all = y_all[train_rows]
            w_all = None if w_all is None else w_all[train_rows]
        elif validation_data is not None:
            val_source, y_val = open_rows(validation_data[0]), np.asarray(validation_data[1])
            val_rows = np.arange(val_source.shape[0])
            if y_val.shape[0] != val_source.shape[0]:
                raise ValueError(f"validation X has {val_source.shape[0]} samples but validation y has "
                                 f"{y_val.shape[0]}")
        if y_val is not None:
            cuts = [r * len(val_rows) // size for r in range(size + 1)]
            self._val_counts = [cuts[r + 1] - cuts[r] for r in range(size)]
            val_raw = read_rows(val_source, val_rows[cuts[rank]:cuts[rank + 1]])

        self.n_samples = len(y_all)
        self.plan = ShardPlan.make(self.n_samples, self.micro_batches, rank, size)
        lo, hi = self.plan.row_start, self.plan.row_stop
        local_raw = read_rows(rows_source, slice(lo, hi) if train_rows is None else train_rows[lo:hi])
        if len(local_raw):  # a rank may own no rows when there are more ranks than rows
            _check_rows(local_raw, lo if train_rows is None else train_rows[lo:hi], rank)
        if not model.built:
            model.build(rows_source.shape[1])
        return local_raw, y_all, w_all, val_raw, y_val

    def _prepare_shards(self, local_raw, y_all, w_all, val_raw, y_val, class_weight, classes) -> None:
        """Scale and encode this rank's rows the way the one-process Trainer would."""
        model = self.model
        self.X = self._prepare_rows(local_raw)
        self.y = model.prepare_y(y_all, fit=True, classes=classes)
        self.sample_weight = _combine_weights(model, w_all, class_weight, self.y)
        self.val = None if y_val is None else (self._prepare_rows(val_raw), model.prepare_y(y_val), y_val)

    def _prepare_rows(self, raw: NDArray) -> Array:
        """Scale rows into the model dtype a chunk at a time (the float64 temporaries stay small)."""
        prepared = np.empty((len(raw), self.model.n_features), dtype=self.model.dtype)
        for chunk in row_chunks(raw):
            prepared[chunk] = self.model.prepare_X(raw[chunk])
        return prepared

    def _allocate_buffers(self) -> None:
        n_params, dtype = self.model.params.size, self.model.dtype
        self._workspaces = [StepWorkspace() for _ in range(self.threads)]
        self.ws = self._workspaces[0]
        if self.deterministic:
            extra = _EXTRA_BYTES // dtype.itemsize
            self._block_params = -(-n_params // extra) * extra  # keep the float64 extras aligned
            self._blocks = np.zeros((self.micro_batches, self._block_params + extra), dtype=dtype)
            self.grad = np.zeros(n_params, dtype=dtype)
            self._thread_grads: list[Array] = []
        else:
            self._buffer = np.zeros(n_params + 2, dtype=dtype)
            self.grad = self._buffer[:n_params]
            self._thread_grads = [np.zeros(n_params, dtype=dtype) for _ in range(self.threads - 1)]

    @property
    def is_root(self) -> bool:
        """True on rank 0, the one rank that prints and writes files."""
        return self.collective.rank == 0

    # ----------------------------------------------------------------- stop requests
    @property
    def stop_requested(self) -> bool:
        """True once any rank asked to stop; the request travels with the next reduction."""
        return self._agreed_stop

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self._local_stop = bool(value)

    # ----------------------------------------------------------------- one step
    def epoch_order(self, epoch: int) -> NDArray[np.int64]:
        """The global sample order: the one-process permutation from (seed, epoch)."""
        if not self.shuffle:
            return np.arange(self.n_samples)
        return np.random.default_rng([self.seed, _SHUFFLE_STREAM, epoch]).permutation(self.n_samples)

    def batch_gradient(self, epoch: int, step: int, idx: NDArray[np.int64], scale: float) -> float:
        """The batch's loss and ``scale`` × gradient, from every rank's share of its rows."""
        normalizer = float(len(idx)) if self.sample_weight is None else float(self.sample_weight[idx].sum())
        if self.deterministic:
            return self._deterministic_gradient(epoch, step, idx, normalizer, scale)
        return self._allreduce_gradient(epoch, step, idx, normalizer, scale)

    def _allreduce_gradient(self, epoch: int, step: int, idx: NDArray[np.int64], normalizer: float,
                            scale: float) -> float:
        """Local gradient of this rank's batch rows, then one in-place Allreduce of [grad, loss, stop]."""
        lo, hi = self.plan.row_start, self.plan.row_stop
        mine = idx[(idx >= lo) & (idx < hi)]
        parts = np.array_split(mine, self.threads)
        outputs = [self.grad, *self._thread_grads]
        first = self.collective.rank * self.threads
        losses = [0.0] * self.threads

        def run_part(t: int) -> None:
            losses[t] = self._micro_gradient(epoch, step, normalizer, parts[t], outputs[t], self._workspaces[t],
                                             first + t, first + t == 0, scale)

        self._on_threads(run_part)
        for extra in self._thread_grads:
            self.grad += extra
        n = self.grad.size
        self._buffer[n] = sum(losses)
        self._buffer[n + 1] = float(self._local_stop)
        self.collective.sum_in_place(self._buffer)
        if self._buffer[n + 1] > 0:
            self._agreed_stop = True
        return float(self._buffer[n])

    def _deterministic_gradient(self, epoch: int, step: int, idx: NDArray[np.int64], normalizer: float,
                                scale: float) -> float:
        """Each shard's gradient into its block; gather all blocks; add them in shard order."""
        plan, n = self.plan, self.grad.size
        shard_of = np.searchsorted(plan.bounds, idx, side="right") - 1
        mine = list(range(plan.first_shard, plan.last_shard))

        def run_shards(t: int) -> None:
            for j in mine[t::self.threads]:
                block = self._blocks[j]
                loss = self._micro_gradient(epoch, step, normalizer, idx[shard_of == j], block[:n],
                                            self._workspaces[t], j, j == 0, scale)
                block[self._block_params:].view(np.float64)[:] = (loss, float(self._local_stop))

        self._on_threads(run_shards)
        self.collective.gather_blocks_in_place(self._blocks, plan.shards_per_rank)
        np.copyto(self.grad, self._blocks[0, :n])
        for j in range(1, self.micro_batches):
            self.grad += self._blocks[j, :n]
        extras = [block[self._block_params:].view(np.float64) for block in self._blocks]
        if any(stop > 0 for _, stop in extras):
            self._agreed_stop = True
        loss = 0.0
        for shard_loss, _ in extras:
            loss += float(shard_loss)
        return loss

    def _micro_gradient(self, epoch: int, step: int, normalizer: float, rows: NDArray[np.int64],
                        grad: Array, ws: StepWorkspace, stream: int, include_l2: bool, scale: float = 1.0) -> float:
        """Loss and ``scale`` × gradient of the given global rows, normalised by the whole batch."""
        model = self.model
        if len(rows) == 0:
            grad[:] = 0
            return model.add_l2(model.params, grad, scale) if include_l2 and model.l2 > 0 else 0.0
        local = rows - self.plan.row_start
        Xb = self.X.take(local, axis=0, mode="clip", out=ws.get("Xb", (len(rows), self.X.shape[1]), self.X.dtype))
        yb = self.y.take(rows, axis=0, mode="clip", out=ws.get("yb", (len(rows),) + self.y.shape[1:], self.y.dtype))
        wb = None if self.sample_weight is None else self.sample_weight[rows]
        loss, _ = model.loss_and_grad(model.params, Xb, yb, wb, grad=grad, normalizer=normalizer,
                                      rng=self.dropout_rng(epoch, step, stream), ws=ws, include_l2=include_l2,
                                      grad_scale=scale)
        return loss

    def _on_threads(self, task) -> None:
        """``task(t)`` for every thread t of this rank (persistent threads; the caller is thread 0)."""
        if self._pool is None:
            task(0)
        else:
            self._pool.run(task)

    # ----------------------------------------------------------------- epochs and agreement
    def run(self) -> History:
        """Train on every rank; an error on one rank aborts the job instead of leaving the others waiting."""
        with ExitStack() as stack:
            stack.enter_context(abort_on_error(self.collective, collective_errors=(TrainingDivergedError,)))
            stack.enter_context(threadpool_limits(limits=self.blas_threads, user_api="blas"))
            if self.threads > 1:
                self._pool = stack.enter_context(WorkerPool(self.threads, "loomnet-rank-worker"))
            try:
                history = super().run()
            finally:
                self._pool = None
        return history

    def _finish_epoch(self) -> bool:
        stop = super()._finish_epoch()
        votes = self.collective.allgather(
            (stop, self.history.stop_reason, self._local_stop, zlib.adler32(self.model.params.tobytes())))
        if len({checksum for *_, checksum in votes}) > 1:
            raise RuntimeError(f"the ranks' parameters differ after epoch {self.epoch}; "
                               "the reductions disagreed (is every rank running the same code and data?)")
        if any(requested for _, _, requested, _ in votes):
            self._agreed_stop = True
        if any(rank_stop for rank_stop, *_ in votes):
            self.history.stop_reason = next(reason for rank_stop, reason, *_ in votes if rank_stop)
            return True
        return stop

    def validation_metrics(self) -> dict[str, float]:
        """Each rank scores its slice of the validation set; outputs are gathered so all ranks agree."""
        Xv_local, yv, _ = self.val
        model = self.model
        local = model._raw_output(Xv_local) if len(Xv_local) else np.empty((0, model.n_outputs), model.dtype)
        out = np.zeros((len(yv), local.shape[1]), dtype=local.dtype)
        start = sum(self._val_counts[: self.collective.rank])
        out[start:start + len(local)] = local
        self.collective.gather_blocks_in_place(out, self._val_counts)
        result = {"val_loss": model.loss.value(out, yv)}
        if model.loss.task == "regression":
            result["val_r2"] = r2_score(yv, out)
        elif yv.ndim == 1 or yv.shape[1] == 1:
            result["val_accuracy"] = float(np.mean(model.loss_predictions(out) == yv.reshape(-1)))
        return result

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The one-process state (rank-count free), plus how the reduction was set up."""
        state = super().state_dict()
        state["distributed"] = {"ranks": self.collective.size, "micro_batches": self.micro_batches,
                                "deterministic": self.deterministic}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("distributed") or {}
        if self.deterministic and saved.get("deterministic") and saved.get("micro_batches") != self.micro_batches:
            warnings.warn(f"the checkpoint was written with micro_batches={saved.get('micro_batches')}, this run "
                          f"uses {self.micro_batches}: the result will not be bit-identical to an uninterrupted run",
                          RuntimeWarning, stacklevel=2)
        super().load_state_dict(state)


def _check_rows(rows: NDArray, global_index: int | NDArray[np.int64], rank: int) -> None:
    """Validate a rank's rows; a NaN or infinity is reported at its row number in the whole X."""
    for chunk in row_chunks(rows) if rows.dtype.kind == "f" else ():
        bad = np.argwhere(~np.isfinite(rows[chunk]))
        if len(bad):
            local_row, column = chunk.start + int(bad[0][0]), int(bad[0][1])
            row = global_index + local_row if isinstance(global_index, int) else int(global_index[local_row])
            raise ValueError(f"X contains NaN or infinity (first at row {row}, column {column}; "
                             f"in the shard of rank {rank})")
    for chunk in row_chunks(rows):
        check_array(rows[chunk], name=f"X (the shard of rank {rank})")
