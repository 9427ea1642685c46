"""The few collectives data-parallel training needs, over MPI or over a single process.

``MPICollective`` wraps an mpi4py communicator; ``SerialCollective`` is the one-process
stand-in, so the sharded trainer runs (and is tested) without MPI.
"""

from __future__ import annotations

import builtins
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

_FORWARD_SECONDS = 0.5


class SerialCollective:
    """One process: every collective is the identity.

    The stand-in for :class:`MPICollective` when there is one rank (``comm="serial"``, or no
    mpi4py): the sharded trainer then runs, and is tested, without MPI.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.distributed import SerialCollective
    >>> one = SerialCollective()
    >>> one.rank, one.size
    (0, 1)
    >>> grad = np.array([1.0, 2.0])
    >>> one.sum_in_place(grad); grad          # the sum over one rank is the rank's own buffer
    array([1., 2.])
    >>> one.allgather("rank 0's report")
    ["rank 0's report"]
    """

    rank, size, local_size = 0, 1, 1
    timeout: float | None = None

    def sum_in_place(self, buffer: NDArray) -> None:
        """Allreduce(SUM) in place: nothing to add."""

    def gather_blocks_in_place(self, blocks: NDArray, blocks_per_rank: list[int]) -> None:
        """Allgatherv in place: this rank already holds every block."""

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def barrier(self) -> None: ...

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)


class MPICollective:
    """Collectives on an mpi4py communicator (buffers are numpy arrays, reduced in place).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The communicator whose ranks share the work (usually ``MPI.COMM_WORLD``).
    timeout : float or None
        Seconds a rank waits for the others in a per-step collective. With a timeout the
        collectives are started non-blocking and a rank that waits longer aborts the job,
        naming itself and the wait: a stuck rank (stopped, deadlocked, on a dead disk) then
        ends the job instead of hanging it. None waits for ever.

    Raises
    ------
    ImportError
        When mpi4py is not installed (the ``mpi`` extra).

    Examples
    --------
    Run under ``mpiexec -n 2 python script.py``; each rank adds its buffer into every rank's:

    >>> import numpy as np
    >>> from mpi4py import MPI                                   # doctest: +SKIP
    >>> from loomnet.distributed import MPICollective
    >>> world = MPICollective(MPI.COMM_WORLD, timeout=60)        # doctest: +SKIP
    >>> grad = np.full(3, float(world.rank + 1))                 # doctest: +SKIP
    >>> world.sum_in_place(grad); grad                           # doctest: +SKIP
    array([3., 3., 3.])
    """

    def __init__(self, comm: Any, timeout: float | None = None):
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm
        self.timeout = timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = node.Get_size()
        node.Free()

    def sum_in_place(self, buffer: NDArray) -> None:
        """One in-place Allreduce(SUM) over the contiguous buffer."""
        if self.timeout is None:
            self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)
        else:
            self._wait(self.comm.Iallreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM), "Allreduce")

    def gather_blocks_in_place(self, blocks: NDArray, blocks_per_rank: list[int]) -> None:
        """Allgatherv of whole rows of ``blocks``: rank r owns the next ``blocks_per_rank[r]`` rows."""
        width = blocks.shape[1]
        counts = [k * width for k in blocks_per_rank]
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        if self.timeout is None:
            self.comm.Allgatherv(self._MPI.IN_PLACE, [blocks, (counts, displs)])
        else:
            self._wait(self.comm.Iallgatherv(self._MPI.IN_PLACE, [blocks, (counts, displs)]), "Allgatherv")

    def _wait(self, request: Any, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not request.Test():
            if time.monotonic() > deadline:
                print(f"loomnet: rank {self.rank} of {self.size} waited {self.timeout:g} s for the other ranks in "
                      f"{what}; one of them is stuck or far slower; aborting all ranks", file=sys.stderr, flush=True)
                time.sleep(_FORWARD_SECONDS)
                self.abort(1)

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.comm.bcast(obj, root=root)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


Collective = SerialCollective | MPICollective


def mpi_available() -> tuple[bool, str]:
    """Whether MPI can be used here, without starting it if it cannot.

    Returns
    -------
    tuple of (bool, str)
        ``(True, "")`` when mpi4py imports and finds an MPI library, else ``(False, why)`` with
        the import error and how to install the ``mpi`` extra.

    Examples
    --------
    >>> from loomnet.distributed import mpi_available
    >>> ok, why = mpi_available()
    >>> ok or "pip install 'loomnet[mpi]'" in why
    True
    """
    try:
        from mpi4py import MPI  # noqa: F401
    except (ImportError, RuntimeError) as exc:
        return False, f"{type(exc).__name__}: {exc} (install with: pip install 'loomnet[mpi]')"
    return True, ""


def get_collective(comm: Any = None) -> Collective:
    """The collective a trainer or a search shares its work through.

    Parameters
    ----------
    comm : None, 'serial', mpi4py communicator or collective
        ``None``: ``MPI.COMM_WORLD``, or one process when mpi4py is missing; ``"serial"``: one
        process (:class:`SerialCollective`) even where MPI exists; an mpi4py communicator: an
        :class:`MPICollective` on it; a collective is returned as it is.

    Returns
    -------
    SerialCollective or MPICollective

    Examples
    --------
    >>> from loomnet.distributed import get_collective
    >>> get_collective("serial").size
    1
    """
    if isinstance(comm, (SerialCollective, MPICollective)):
        return comm
    if comm == "serial":
        return SerialCollective()
    if comm is None:
        ok, _ = mpi_available()
        if not ok:
            return SerialCollective()
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    return MPICollective(comm)


def world_rank() -> int:
    """This process's rank as the launcher set it (0 outside mpiexec), without starting MPI.

    Reads the launcher's environment (``PMI_RANK`` for MPICH, ``OMPI_COMM_WORLD_RANK`` for Open
    MPI, ``PMIX_RANK``, ``SLURM_PROCID``), so a script can decide what rank 0 alone does before
    it imports mpi4py.

    Returns
    -------
    int

    Examples
    --------
    >>> from loomnet.distributed import world_rank
    >>> world_rank()        # in a process not started by mpiexec
    0
    """
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def world_size() -> int:
    """Number of ranks this process was launched with (1 outside mpiexec), without starting MPI.

    Reads ``PMI_SIZE`` (MPICH), ``OMPI_COMM_WORLD_SIZE`` (Open MPI) or ``SLURM_NTASKS``.

    Returns
    -------
    int

    Examples
    --------
    >>> from loomnet.distributed import world_size
    >>> world_size()        # in a process not started by mpiexec
    1
    """
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


@contextmanager
def abort_on_error(
    collective: Collective, *, collective_errors: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Turn an exception on one rank into the end of the whole job, with a message naming the rank.

    Without this, the other ranks would wait forever in their next collective. On more than one
    rank, the failing rank prints its traceback and ``rank R of N failed with ...`` and aborts
    every rank; on one rank the exception is raised as usual.

    Parameters
    ----------
    collective : SerialCollective or MPICollective
        The ranks to end together.
    collective_errors : tuple of exception types
        Exceptions raised on every rank at once by construction (an agreed error): they pass
        through without an abort.

    Examples
    --------
    >>> from loomnet.distributed import SerialCollective, abort_on_error
    >>> try:
    ...     with abort_on_error(SerialCollective()):
    ...         raise ValueError("bad shard")
    ... except ValueError as exc:                  # one rank: raised as usual
    ...     print(exc)
    bad shard
    """
    try:
        yield
    except collective_errors:
        raise
    except BaseException as exc:
        if collective.size == 1:
            raise
        detail = "".join(traceback.format_exception(exc)).rstrip()
        print(f"{detail}\nloomnet: rank {collective.rank} of {collective.size} failed with "
              f"{type(exc).__name__}: {exc}; aborting all ranks", file=sys.stderr, flush=True)
        time.sleep(_FORWARD_SECONDS)  # the launcher forwards output asynchronously; the abort would cut it off
        collective.abort(1)
        raise


def agree_on_errors(collective: Collective, error: BaseException | None, what: str) -> None:
    """Raise on every rank if any rank failed (so no rank is left waiting); ``what`` names the phase.

    The exception raised is the first failing rank's nearest built-in type (a bad value stays a
    ValueError on every rank), with every failing rank's message.
    """
    report = None if error is None else (f"{type(error).__name__}: {error}",
                                          [cls.__name__ for cls in type(error).__mro__])
    failures = collective.allgather(report)
    bad = [(rank, failure) for rank, failure in enumerate(failures) if failure is not None]
    if not bad:
        return
    if collective.size == 1 and error is not None:
        raise error
    lines = "; ".join(f"rank {rank}: {message}" for rank, (message, _) in bad)
    message = f"{what} failed on {len(bad)} of {collective.size} ranks: {lines}"
    kind = next((getattr(builtins, name) for name in bad[0][1][1] if isinstance(getattr(builtins, name, None), type)
                 and issubclass(getattr(builtins, name), Exception)), RuntimeError)
    try:
        agreed = kind(message)
    except TypeError:  # a built-in that needs more arguments than a message
        agreed = RuntimeError(message)
    raise agreed from error


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def plan_threads(collective: Collective, threads: int, blas_threads: int | None) -> int:
    """BLAS threads per worker thread so that ranks × threads × BLAS threads stays within the node's cores."""
    cores, ranks = cpu_cores(), collective.local_size
    if threads > 1 and ranks * threads > cores:
        raise ValueError(f"{ranks} ranks on this node × {threads} threads = {ranks * threads} exceeds its "
                         f"{cores} cores; use threads <= {max(1, cores // ranks)} or fewer ranks per node")
    if blas_threads is None:
        return max(1, cores // (ranks * threads))
    if blas_threads < 1:
        raise ValueError(f"blas_threads must be >= 1, got {blas_threads}")
    if ranks * threads * blas_threads > cores and blas_threads > 1:
        raise ValueError(f"{ranks} ranks × {threads} threads × {blas_threads} BLAS threads = "
                         f"{ranks * threads * blas_threads} exceeds this node's {cores} cores")
    return blas_threads
