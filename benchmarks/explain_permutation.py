"""Permutation importance on 1 .. cores worker threads: wall time and the BLAS threads each got.

    .venv/bin/python benchmarks/explain_permutation.py            # 20,000 x 64 rows, 5 shuffles
    .venv/bin/python benchmarks/explain_permutation.py --quick    # 4,000 rows, 2 shuffles

Also times one worker with BLAS held to a single thread ("1*"), to separate the worker-thread
speed-up from BLAS's own threads. Best of the repeats, variants alternating. This script unsets
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for its own process.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_name, None)

import argparse  # noqa: E402
import time  # noqa: E402

from threadpoolctl import threadpool_limits  # noqa: E402

from loomnet import Dense, Sequential, datasets  # noqa: E402
from loomnet.explain import permutation_importance  # noqa: E402
from loomnet.parallel import available_cores, blas_threads_per_worker  # noqa: E402

try:
    from .common import format_table
except ImportError:  # run as a script
    from common import format_table  # type: ignore[no-redef]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant (best is kept)")
    args = parser.parse_args()
    rows, shuffles = (4_000, 2) if args.quick else (20_000, 5)
    data = datasets.make_classification(n_samples=rows + 2000, n_features=64, n_classes=10, seed=0)
    model = Sequential([Dense(256, "relu"), Dense(128, "relu"), Dense(10)], loss="cross_entropy")
    model.fit(data.X[:2000], data.y[:2000], epochs=3, batch_size=128)
    X, y = data.X[2000:], data.y[2000:]
    cores = available_cores()
    variants = [("1*", 1), *((str(w), w) for w in range(1, cores + 1))]
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, workers in variants:
            with threadpool_limits(1 if name.endswith("*") else None, user_api="blas"):
                start = time.perf_counter()
                permutation_importance(model, X, y, n_jobs=workers, n_repeats=shuffles)
                elapsed = time.perf_counter() - start
            best[name] = min(best.get(name, float("inf")), elapsed)
    table = [(name, 1 if name.endswith("*") else blas_threads_per_worker(workers), round(best[name], 3),
              round(best["1*"] / best[name], 2)) for name, workers in variants]
    print(f"permutation importance: {X.shape[0]} x {X.shape[1]}, {shuffles} shuffles per feature, "
          f"MLP 64-256-128-10, {cores} cores, best of {args.repeats}")
    print(format_table(["workers", "BLAS threads each", "seconds", "speed-up vs 1*"], table))


if __name__ == "__main__":
    main()
