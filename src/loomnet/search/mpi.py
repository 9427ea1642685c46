"""Model search across MPI processes: the jobs of :mod:`loomnet.search.jobs` on an MPIPoolExecutor.

``backend="mpi"`` in the search functions lands here. Two ways to start the workers:

- ``mpiexec -n K python -m mpi4py.futures search.py``: rank 0 runs the script, ranks 1..K-1
  (on any machines of the allocation) serve jobs. This is the way on a cluster.
- a plain ``python search.py``: the workers are spawned (``MPI_Comm_spawn``) on this machine;
  the ``mpiexec`` next to the interpreter is put on PATH for MPICH's singleton spawn.

The data travel once to every worker (the pool's initializer), jobs and results one by one.
Each worker runs BLAS on one thread: the parallelism is across jobs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from ..distributed.comm import cpu_cores, mpi_available

_worker_data: dict[str, Any] = {}


def run_jobs_mpi(run_one: Any, jobs: Sequence[Any], X: NDArray, y: NDArray, *,
                 n_jobs: int | None = None) -> list[Any]:
    """``run_one(job, X, y)`` for every job on MPI worker processes; results in job order.

    ``n_jobs`` caps the workers (default: every worker of ``mpiexec ... -m mpi4py.futures``, or
    this machine's cores when spawning). The first job that raises cancels the rest and its
    exception is re-raised here.
    """
    ok, why = mpi_available()
    if not ok:
        raise ValueError(f"backend='mpi' needs mpi4py and an MPI library: {why}")
    from mpi4py.futures import MPIPoolExecutor

    from .futures import collect

    if n_jobs is not None and n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    launched = _launched_with_workers()
    if not launched:
        _launcher_on_path()
        n_jobs = min(n_jobs or cpu_cores(), max(len(jobs), 1))
    with MPIPoolExecutor(max_workers=n_jobs, initializer=_attach, initargs=(run_one, X, y)) as pool:
        return collect(pool, [pool.submit(_run_in_worker, job) for job in jobs])


def _launched_with_workers() -> bool:
    """True under ``mpiexec -n K python -m mpi4py.futures`` (K > 1): the workers already exist."""
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_size() > 1


def _launcher_on_path() -> None:
    bin_dir = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(bin_dir, "mpiexec")) and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _attach(run_one: Any, X: NDArray, y: NDArray) -> None:
    """Pool initializer, once per worker: keep the data and the job runner, one BLAS thread."""
    threadpool_limits(limits=1, user_api="blas")
    _worker_data.update(run_one=run_one, X=X, y=y)


def _run_in_worker(job: Any) -> Any:
    return _worker_data["run_one"](job, _worker_data["X"], _worker_data["y"])
