"""Thread-parallel training and model search (NumPy releases the GIL inside BLAS and ufuncs).

- ``fit(..., workers=N, mode="sync")``: each batch in a fixed number of micro-batches over N
  threads; the same bits for any N (:mod:`.sync`).
- ``mode="hogwild"`` / ``"locked"``: asynchronous workers on shared parameters (:mod:`.hogwild`).
- ``workers="auto"``: measures the candidate plans and keeps the fastest (:mod:`.auto`).
- :class:`PrefetchLoader`: batches prepared in a background thread, from arrays or ``.npy`` memory maps.
- :mod:`.search`: grid/random search, k-fold CV and bagging on threads or processes over one copy of the data.

Importing this package registers the thread runners with the training loop
(:data:`loomnet.training.RUNNERS`).
"""

from ..training import RUNNERS
from .auto import auto_plan
from .cores import available_cores, blas_threads_per_worker
from .loader import PrefetchLoader
from .plan import DEFAULT_MICRO_BATCHES, MODES, ParallelPlan, make_runner
from .pool import WorkerPool
from .search import BaggedEnsemble, SearchResult, bagging, cross_validate, grid_search, random_search
from .streaming import fit_stream

RUNNERS.threads = make_runner

__all__ = [
    "DEFAULT_MICRO_BATCHES", "MODES", "BaggedEnsemble", "ParallelPlan", "PrefetchLoader", "SearchResult",
    "WorkerPool", "auto_plan", "available_cores", "bagging", "blas_threads_per_worker", "cross_validate",
    "fit_stream", "grid_search", "random_search",
]
