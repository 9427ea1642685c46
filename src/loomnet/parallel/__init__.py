"""Thread-parallel training (NumPy releases the GIL inside BLAS and ufuncs): the thread runners.

- ``fit(..., workers=N, mode="sync")``: each batch in a fixed number of micro-batches over N
  threads; the same bits for any N (:mod:`.sync`).
- ``mode="hogwild"`` / ``"locked"``: asynchronous workers on shared parameters (:mod:`.hogwild`).
- ``workers="auto"``: measures the candidate plans and keeps the fastest (:mod:`.auto`).

Importing this package registers the thread runners with the training loop
(:data:`loomnet.training.RUNNERS`).
"""

from ..training import RUNNERS
from .auto import auto_plan
from .cores import available_cores, blas_threads_per_worker
from .plan import DEFAULT_MICRO_BATCHES, MODES, ParallelPlan, default_micro_batches
from .pool import WorkerPool
from .runners import make_runner

RUNNERS.threads = make_runner

__all__ = ["DEFAULT_MICRO_BATCHES", "MODES", "ParallelPlan", "WorkerPool", "auto_plan", "available_cores",
           "blas_threads_per_worker", "default_micro_batches"]
