"""Run many training jobs at once over ONE copy of the data: on threads, or on processes with shared memory.

Threads share the process's arrays for free; each job only reads rows by index (its trainer
gathers batches from the shared matrix). Processes cannot share Python objects, so the data
goes once into a ``multiprocessing.shared_memory`` block that every worker process maps
read-only; only job descriptions and results are pickled.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from ..parallel.cores import available_cores, blas_limits
from .futures import collect

BACKENDS = ("threads", "processes", "mpi")  # "mpi": loomnet.search.mpi (MPIPoolExecutor)


@dataclass
class Job:
    """One model to train: its hyperparameters, the rows it trains on and the rows it is scored on."""

    params: dict[str, Any]
    train_rows: NDArray[np.int64]
    score_rows: NDArray[np.int64] | None
    seed: int
    fold: int = 0
    keep_model: bool = False


@dataclass
class JobResult:
    params: dict[str, Any]
    fold: int
    score: float | None
    fit_time: float
    peak_rss_mb: float
    model: Any = None
    history: dict[str, Any] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)  # the process that trained it


Runner = Callable[[Job, NDArray, NDArray], JobResult]


def run_jobs(run_one: Runner, jobs: Sequence[Job], X: NDArray, y: NDArray, *, backend: str = "threads",
             n_jobs: int | None = None) -> list[JobResult]:
    """``run_one(job, X, y)`` for every job, ``n_jobs`` at a time; results in job order."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if backend == "mpi":
        from .mpi import run_jobs_mpi

        return run_jobs_mpi(run_one, jobs, X, y, n_jobs=n_jobs)
    cores = available_cores()
    n_jobs = cores if n_jobs is None else int(n_jobs)
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    n_jobs = min(n_jobs, max(len(jobs), 1))
    blas = max(1, cores // n_jobs)
    if backend == "threads":
        with blas_limits(blas), ThreadPoolExecutor(n_jobs, thread_name_prefix="loomnet-search") as pool:
            return collect(pool, [pool.submit(run_one, job, X, y) for job in jobs])
    with SharedArrays({"X": X, "y": y}) as shared:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n_jobs, mp_context=context, initializer=_attach,
                                 initargs=(shared.specs, blas)) as pool:
            return collect(pool, [pool.submit(_run_in_worker, run_one, job) for job in jobs])


class SharedArrays:
    """Arrays copied once into shared memory blocks; ``specs`` lets another process map them."""

    def __init__(self, arrays: dict[str, NDArray]):
        self.blocks: list[shared_memory.SharedMemory] = []
        self.specs: dict[str, tuple[str, tuple[int, ...], str]] = {}
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            block = shared_memory.SharedMemory(create=True, size=max(array.nbytes, 1))
            self.blocks.append(block)
            np.ndarray(array.shape, array.dtype, buffer=block.buf)[...] = array
            self.specs[name] = (block.name, array.shape, array.dtype.str)

    def __enter__(self) -> SharedArrays:
        return self

    def __exit__(self, *exc: object) -> None:
        for block in self.blocks:
            block.close()
            block.unlink()


_worker_arrays: dict[str, NDArray] = {}
_worker_blocks: list[shared_memory.SharedMemory] = []


def _attach(specs: dict[str, tuple[str, tuple[int, ...], str]], blas: int) -> None:
    """Process-pool initializer: map the shared arrays read-only and limit BLAS threads."""
    threadpool_limits(limits=blas, user_api="blas")
    for name, (block_name, shape, dtype) in specs.items():
        block = shared_memory.SharedMemory(name=block_name)
        # (spawned workers share the parent's resource tracker: the parent's unlink is the only one)
        _worker_blocks.append(block)
        array = np.ndarray(shape, np.dtype(dtype), buffer=block.buf)
        array.flags.writeable = False
        _worker_arrays[name] = array


def _run_in_worker(run_one: Runner, job: Job) -> JobResult:
    return run_one(job, _worker_arrays["X"], _worker_arrays["y"])


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MiB: VmHWM where /proc exists. ``ru_maxrss``
    would not do there: Linux carries the parent's peak into a child across fork and exec, so a
    worker spawned by a 400 MB process would report at least 400 MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS
