"""Scale out over MPI: data-parallel training and model search across processes and machines.

Needs the ``mpi`` extra (``pip install 'loomnet[mpi]'``: mpi4py + MPICH); without it everything
here still runs as one process, which is what the single-process comparisons use.
"""

from .comm import MPICollective, SerialCollective, abort_on_error, get_collective, mpi_available, world_rank, world_size
from .trainer import DistributedTrainer

__all__ = [
    "DistributedTrainer",
    "MPICollective",
    "SerialCollective",
    "abort_on_error",
    "get_collective",
    "mpi_available",
    "world_rank",
    "world_size",
]
