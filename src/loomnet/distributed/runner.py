"""The MPI runner: every step of the one training loop shared by the ranks of a communicator.

The global batch and its order are those of a one-process run with the same seed. A rank holds
only the rows of its data shards; for each step it computes the gradient of the batch rows it
owns (:meth:`Step.slice_gradient` on their positions in the batch, so dropout draws the one-process
masks) with the normaliser of the WHOLE batch, so the local gradients sum to the batch gradient.
By default they are summed with one in-place Allreduce of a contiguous buffer [gradient, loss,
stop flag]. With ``deterministic=True`` each shard's gradient is gathered to every rank and the
shards are added in shard order, which gives the same bits for any number of ranks (and, with
one shard, the bits of the plain loop up to the summation of the batch).
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from ..engine._validation import user_stacklevel
from ..engine.params import StepWorkspace
from ..parallel.pool import WorkerPool
from ..training import Lane, SerialRunner, TrainingDivergedError
from .comm import Collective, abort_on_error
from .data import ShardPlan

if TYPE_CHECKING:
    from ..engine.network import Sequential
    from ..engine.optimizers import StepUpdate
    from ..training import Batch, Step, Trainer

Array = NDArray[np.floating]
_EXTRA_BYTES = 16  # per gathered shard block: the float64 loss and the float64 stop flag


class MPIRunner(SerialRunner):
    """Steps shared by the ranks of ``collective``; ``threads`` threads per rank split its rows.

    Stop requests (Ctrl-C, SIGTERM on any rank) travel with the next reduction, so every rank
    stops at the same step; stopping rules and a parameter checksum are agreed after every epoch.
    """

    name = "mpi"

    def __init__(self, collective: Collective, plan: ShardPlan, *, micro_batches: int, deterministic: bool,
                 threads: int, blas_threads: int, val_counts: list[int]):
        self.collective, self.plan = collective, plan
        self.micro_batches, self.deterministic = micro_batches, deterministic
        self.threads, self.blas_threads, self.val_counts = threads, blas_threads, val_counts
        self.pool: WorkerPool | None = None
        self.agreed_stop = False

    @property
    def is_root(self) -> bool:
        """True on rank 0, the one rank that prints and writes files."""
        return self.collective.rank == 0

    def describe(self) -> str:
        how = "deterministic shard-order reduction" if self.deterministic else "Allreduce"
        return f"MPI: {self.collective.size} ranks × {self.threads} thread(s), {how}"

    @contextmanager
    def session(self, trainer: Trainer) -> Iterator[list[Lane]]:
        """An error on one rank aborts the job instead of leaving the others waiting."""
        n_params, dtype = trainer.model.params.size, trainer.model.dtype
        self.workspaces = [trainer.ws] + [StepWorkspace() for _ in range(self.threads - 1)]
        if self.deterministic:
            extra = _EXTRA_BYTES // dtype.itemsize
            self.block_params = -(-n_params // extra) * extra  # keep the float64 extras aligned
            self.blocks = np.zeros((self.micro_batches, self.block_params + extra), dtype=dtype)
        else:
            self.buffer = np.zeros(n_params + 2, dtype=dtype)
            self.thread_grads = [np.zeros(n_params, dtype=dtype) for _ in range(self.threads - 1)]
        self.trainer = trainer
        with ExitStack() as stack:
            stack.enter_context(abort_on_error(self.collective, collective_errors=(TrainingDivergedError,)))
            stack.enter_context(threadpool_limits(limits=self.blas_threads, user_api="blas"))
            if self.threads > 1:
                self.pool = stack.enter_context(WorkerPool(self.threads, "loomnet-rank-worker"))
            try:
                if self.deterministic:
                    with super().session(trainer) as lanes:
                        yield lanes
                else:  # the gradient lives in the reduction buffer: the Allreduce copies nothing
                    yield [Lane(0, trainer.model.optimizer, trainer.model.params, trainer.seed,
                                grad=self.buffer[:n_params], ws=trainer.ws)]
            finally:
                self.pool = None

    def stopping(self, trainer: Trainer) -> bool:
        """The stop request all ranks agreed on (a local one waits for the next reduction)."""
        return self.agreed_stop

    def _agree_stop(self, any_rank: bool) -> None:
        if any_rank:
            self.agreed_stop = True
            self.trainer.stop_requested = True

    # ----------------------------------------------------------------- one step
    def gradient(self, step: Step, batch: Batch, lane: Lane, update: StepUpdate | None) -> float:
        """The batch's loss and gradient into ``lane.grad``, from every rank's share of its rows."""
        if self.deterministic:
            return self._deterministic_gradient(step, batch, lane.grad)
        return self._allreduce_gradient(step, batch, lane.grad)

    def _allreduce_gradient(self, step: Step, batch: Batch, grad: Array) -> float:
        """Local gradient of this rank's batch rows, then one in-place Allreduce of [grad, loss, stop]."""
        lo, hi = self.plan.row_start, self.plan.row_stop
        idx = batch.idx
        parts = np.array_split(np.flatnonzero((idx >= lo) & (idx < hi)), self.threads)
        outputs = [grad, *self.thread_grads]
        first = self.collective.rank * self.threads
        losses = [0.0] * self.threads

        def run_part(t: int) -> None:
            losses[t] = step.slice_gradient(batch, parts[t], outputs[t], self.workspaces[t], first + t == 0)

        self._on_threads(run_part)
        for extra in self.thread_grads:
            grad += extra
        n = grad.size  # grad is buffer[:n]
        buffer = self.buffer
        buffer[n] = sum(losses)
        buffer[n + 1] = float(self.trainer.stop_requested)
        self.collective.sum_in_place(buffer)
        self._agree_stop(buffer[n + 1] > 0)
        return float(buffer[n])

    def _deterministic_gradient(self, step: Step, batch: Batch, grad: Array) -> float:
        """Each shard's gradient into its block; gather all blocks; add them in shard order."""
        plan, n = self.plan, grad.size
        shard_of = np.searchsorted(plan.bounds, batch.idx, side="right") - 1
        mine = list(range(plan.first_shard, plan.last_shard))
        stop = float(self.trainer.stop_requested)

        def run_shards(t: int) -> None:
            for j in mine[t::self.threads]:
                block = self.blocks[j]
                loss = step.slice_gradient(batch, np.flatnonzero(shard_of == j), block[:n], self.workspaces[t], j == 0)
                block[self.block_params:].view(np.float64)[:] = (loss, stop)

        self._on_threads(run_shards)
        self.collective.gather_blocks_in_place(self.blocks, plan.shards_per_rank)
        np.copyto(grad, self.blocks[0, :n])
        for j in range(1, self.micro_batches):
            grad += self.blocks[j, :n]
        extras = [block[self.block_params:].view(np.float64) for block in self.blocks]
        self._agree_stop(any(flag > 0 for _, flag in extras))
        loss = 0.0
        for shard_loss, _ in extras:
            loss += float(shard_loss)
        return loss

    def _on_threads(self, task: Callable[[int], None]) -> None:
        """``task(t)`` for every thread t of this rank (persistent threads; the caller is thread 0)."""
        if self.pool is None:
            task(0)
        else:
            self.pool.run(task)

    # ----------------------------------------------------------------- epochs and agreement
    def end_epoch(self, trainer: Trainer, lanes: list[Lane], stop: bool) -> bool:
        """Every rank's stopping decision and parameter checksum; a stop anywhere stops all."""
        history = trainer.history
        votes = self.collective.allgather(
            (stop, history.stop_reason, trainer.stop_requested, zlib.adler32(trainer.model.params.tobytes())))
        if len({checksum for *_, checksum in votes}) > 1:
            raise RuntimeError(f"the ranks' parameters differ after epoch {trainer.epoch}; "
                               "the reductions disagreed (is every rank running the same code and data?)")
        self._agree_stop(any(requested for _, _, requested, _ in votes))
        if any(rank_stop for rank_stop, *_ in votes):
            history.stop_reason = next(reason for rank_stop, reason, *_ in votes if rank_stop)
            return True
        return stop

    def validation_output(self, model: Sequential, X: Array) -> Array:
        """Each rank scores its slice of the validation set; outputs are gathered so all ranks agree."""
        local = model._raw_output(X) if len(X) else np.empty((0, model.n_outputs), model.dtype)
        out = np.zeros((sum(self.val_counts), local.shape[1]), dtype=local.dtype)
        start = sum(self.val_counts[: self.collective.rank])
        out[start:start + len(local)] = local
        self.collective.gather_blocks_in_place(out, self.val_counts)
        return out

    def reduce_statistics(self, sums: NDArray[np.float64]) -> NDArray[np.float64]:
        """Every rank's BatchNorm sums, added in rank order: the same result on every rank."""
        total = np.zeros_like(sums)
        for part in self.collective.allgather(sums):
            total += part
        return total

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """How the reduction was set up (the rest of a checkpoint does not depend on the rank count)."""
        return {"ranks": self.collective.size, "micro_batches": self.micro_batches,
                "deterministic": self.deterministic}

    def check_state(self, saved: dict[str, Any]) -> None:
        if self.deterministic and saved.get("deterministic") and saved.get("micro_batches") != self.micro_batches:
            warnings.warn(f"the checkpoint was written with micro_batches={saved.get('micro_batches')}, this run "
                          f"uses {self.micro_batches}: the result will not be bit-identical to an uninterrupted run",
                          RuntimeWarning, stacklevel=user_stacklevel())
