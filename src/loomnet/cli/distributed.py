"""``loomnet train --distributed mpi``: the trainer factory the train command looks up.

Every rank runs the same command line; rank 0 alone prints progress and writes checkpoints,
the model file and the plot (the other ranks get no callbacks and stay quiet).
``LOOMNET_MPI_TIMEOUT=SECONDS`` aborts the job when a rank waits that long for the others.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from numpy.typing import ArrayLike

from ..distributed.comm import cpu_cores, get_collective, mpi_available
from ..distributed.trainer import DistributedTrainer

if TYPE_CHECKING:
    from ..engine.network import Sequential


def make_trainer(model: Sequential, X: ArrayLike, y: ArrayLike, *, workers: int | str | None = None,
                 mode: str | None = None, deterministic: bool = False, **trainer_kwargs: Any) -> DistributedTrainer:
    """A :class:`DistributedTrainer` on MPI.COMM_WORLD; ``workers`` threads per rank ('auto': cores / ranks)."""
    ok, why = mpi_available()
    if not ok:
        raise ValueError(f"--distributed mpi needs mpi4py and an MPI library: {why}")
    if mode not in (None, "sync"):
        raise ValueError(f"--mode {mode} is not available with --distributed mpi: ranks combine gradients "
                         "synchronously (use --mode sync or leave it out)")
    collective = get_collective()
    timeout = os.environ.get("LOOMNET_MPI_TIMEOUT")
    if timeout:
        try:
            trainer_kwargs["timeout"] = float(timeout)
        except ValueError:
            raise ValueError(f"LOOMNET_MPI_TIMEOUT must be a number of seconds, got {timeout!r}") from None
    if workers == "auto":
        workers = max(1, cpu_cores() // collective.local_size)
    return DistributedTrainer(model, X, y, comm=collective, threads=workers or 1, deterministic=deterministic,
                              **trainer_kwargs)
