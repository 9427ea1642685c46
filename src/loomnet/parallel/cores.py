"""How many cores we may use, and BLAS thread limits so workers × BLAS threads stays within them."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from ..engine._validation import user_stacklevel


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's total.

    A container or ``taskset`` limit is respected: this is the budget for workers × BLAS threads.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> from loomnet.parallel import available_cores
    >>> available_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def gil_enabled() -> bool:
    """Whether the GIL is on: always on a default CPython build; on a free-threaded one (3.13t)
    unless ``PYTHON_GIL=1`` or an extension that does not declare free-threading support
    turned it back on at import."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def blas_threads_per_worker(workers: int, cores: int | None = None) -> int:
    """BLAS threads each worker may use: cores // workers, at least one.

    Why: NumPy's BLAS starts its own threads; N Python workers each running a BLAS with all
    cores would put N × cores threads on the cores and thrash.

    Parameters
    ----------
    workers : int
        Python worker threads.
    cores : int, optional
        The core budget; :func:`available_cores` by default.

    Returns
    -------
    int
        BLAS threads per worker, so that workers × BLAS threads ≤ cores (1 when workers > cores).

    Warns
    -----
    RuntimeWarning
        When the workers outnumber the cores: they will time-share them.

    Examples
    --------
    >>> from loomnet.parallel import blas_threads_per_worker
    >>> blas_threads_per_worker(2, cores=8), blas_threads_per_worker(3, cores=8)
    (4, 2)
    """
    cores = available_cores() if cores is None else cores
    if workers > cores:
        warnings.warn(f"{workers} workers on {cores} cores: the workers will time-share the cores "
                      f"(each gets 1 BLAS thread); use workers <= {cores} for speed",
                      RuntimeWarning, stacklevel=user_stacklevel())
    return max(1, cores // workers)


@contextmanager
def blas_limits(threads_per_worker: int) -> Iterator[None]:
    """Limit every BLAS library in the process to ``threads_per_worker`` threads for the block."""
    with threadpool_limits(limits=threads_per_worker, user_api="blas"):
        yield
