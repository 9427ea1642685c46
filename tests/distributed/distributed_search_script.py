"""``mpiexec -n 3 python -m mpi4py.futures tests/distributed_search_script.py OUT``: a grid search on MPI workers.

Rank 0 runs this file; the other ranks serve jobs. It runs the same grid on the thread pool and
writes both results to OUT/search.json for tests/test_distributed.py to compare.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from loomnet import datasets
from loomnet.search.jobs import grid_search

GRID = {"hidden": [(16,), (32,)], "learning_rate": [1e-3, 3e-3]}


def scores(result) -> list:
    return [[r.params["hidden"][0], r.params["learning_rate"], r.fold, r.score] for r in result.results]


if __name__ == "__main__":
    data = datasets.load("digits")
    X, y = data.X[:600], data.y[:600]
    options = {"cv": 2, "epochs": 3, "batch_size": 32}
    on_mpi = grid_search(GRID, X, y, backend="mpi", **options)
    on_threads = grid_search(GRID, X, y, backend="threads", n_jobs=1, **options)
    Path(sys.argv[1], "search.json").write_text(json.dumps({"mpi": scores(on_mpi), "threads": scores(on_threads)}))
