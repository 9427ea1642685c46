"""How thread-parallel training runs: the plan (mode, workers, micro-batches, BLAS threads) for
``workers=N``; ``workers="auto"`` measures candidate plans (:mod:`.auto`, :mod:`.runners`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cores import blas_threads_per_worker

MODES = ("sync", "hogwild", "locked")
# Slices per batch in mode="sync" unless given: a function of the batch size alone, so the bits
# never depend on the machine or the number of workers. At most 8 slices, each of at least
# DEFAULT_SLICE_ROWS rows (smaller slices leave BLAS idle and add a pass per slice to the reduction).
DEFAULT_MICRO_BATCHES = 8
DEFAULT_SLICE_ROWS = 64


def default_micro_batches(batch_size: int) -> int:
    """The number of slices a batch is cut into in ``mode="sync"`` when ``micro_batches`` is not given.

    ``batch_size // 64``, from 1 to 8: a function of the batch size alone, so the fitted bits
    depend neither on the number of workers nor on the machine.

    Parameters
    ----------
    batch_size : int
        Rows per batch.

    Returns
    -------
    int
        The number of micro-batches, in [1, ``DEFAULT_MICRO_BATCHES``].

    Examples
    --------
    >>> from loomnet.parallel import default_micro_batches
    >>> default_micro_batches(32), default_micro_batches(200), default_micro_batches(1024)
    (1, 3, 8)
    """
    return max(1, min(DEFAULT_MICRO_BATCHES, batch_size // DEFAULT_SLICE_ROWS))


@dataclass(frozen=True)
class ParallelPlan:
    """How training runs: mode, number of workers, micro-batches and BLAS threads per worker.

    Made by ``workers=N`` (the plan is fixed) or by ``workers="auto"`` (:func:`auto_plan`, then
    timed); a fit reports the plan it ran in ``history.plan``.

    Parameters
    ----------
    mode : {'sync', 'hogwild', 'locked'}
        'sync': every batch in ``micro_batches`` slices, gradients reduced in a fixed order, one
        update. 'hogwild': asynchronous workers update shared parameters without a lock;
        'locked': with one.
    workers : int
        Threads, the caller included.
    micro_batches : int
        Slices per batch in 'sync' mode (1 otherwise).
    blas_threads : int
        BLAS threads each worker may use (workers × BLAS threads stays within the cores).
    reason : str, optional
        Why this plan was chosen, for people.

    Examples
    --------
    >>> from loomnet.parallel import ParallelPlan
    >>> ParallelPlan("sync", workers=2, micro_batches=4, blas_threads=1).describe()
    'mode=sync, workers=2, 4 micro-batches, 1 BLAS thread(s) per worker'
    """

    mode: str
    workers: int
    micro_batches: int
    blas_threads: int
    reason: str = ""

    def describe(self) -> str:
        """The plan in one line, with the reason when there is one."""
        split = f", {self.micro_batches} micro-batches" if self.mode == "sync" else ""
        text = f"mode={self.mode}, workers={self.workers}{split}, {self.blas_threads} BLAS thread(s) per worker"
        return f"{text} ({self.reason})" if self.reason else text

    def same_as(self, other: ParallelPlan) -> bool:
        """Whether both plans run the same way (the reasons may differ)."""
        return (self.mode, self.workers, self.micro_batches, self.blas_threads) == \
            (other.mode, other.workers, other.micro_batches, other.blas_threads)


def check_options(workers: int | str, mode: str, micro_batches: int | None) -> None:
    """Refuse impossible thread options with a message naming the option."""
    if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                              or workers < 1):
        raise ValueError(f"workers must be a positive integer or 'auto', got {workers!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if micro_batches is not None:
        if workers == "auto":
            raise ValueError("micro_batches is chosen by workers='auto'; give workers=N to set it")
        if isinstance(micro_batches, bool) or not isinstance(micro_batches, (int, np.integer)) or micro_batches < 1:
            raise ValueError(f"micro_batches must be a positive integer, got {micro_batches!r}")
        if mode == "sync" and micro_batches < workers:
            raise ValueError(f"micro_batches={micro_batches} is fewer than workers={workers}: "
                             "some workers would have nothing to do")


def fixed_plan(workers: int, mode: str, micro_batches: int | None, batch_size: int) -> ParallelPlan:
    """The plan for ``workers=N``.

    In mode="sync" each worker runs one BLAS thread whatever the machine: a BLAS library may sum
    in another order with another thread count, and the bits must depend on neither the number
    of workers nor the cores. Workers beyond the default number of slices compute no slice but
    still share the reduction and the update.
    """
    check_options(workers, mode, micro_batches)
    workers = int(workers)
    if micro_batches is None:
        micro_batches = default_micro_batches(batch_size) if mode == "sync" else 1
    if mode != "sync":
        return ParallelPlan(mode, workers, int(micro_batches), blas_threads_per_worker(workers))
    blas_threads_per_worker(workers)  # warns when the workers outnumber the cores
    return ParallelPlan(mode, workers, int(micro_batches), 1)
