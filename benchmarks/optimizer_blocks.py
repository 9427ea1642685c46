"""How big a block the optimisers should walk the flat arrays in (``loomnet.engine.optimizers.BLOCK``).

    python -m benchmarks.optimizer_blocks            # momentum SGD and Adam on 535,818 parameters

Before each timed update a large matrix product evicts the caches, as the backward pass does
in training; every block size is timed in turn, round after round, so a noisy moment hits all
of them. Three updates: momentum SGD given g (four passes, one through a temporary), Adam, and
momentum SGD given lr·g (three passes, no temporary: the training loop's case, which runs in
one pass since this benchmark showed blocks do not pay there; forced into blocks here).
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from this process's environment.
"""

from __future__ import annotations

import os
import sys

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _PINNED) and __name__ == "__main__":
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.optimizer_blocks", *sys.argv[1:]], env)

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import loomnet.engine.optimizers as optimizers  # noqa: E402

N_PARAMS = 535_818  # the 784-512-256-10 benchmark MLP
SIZES = (1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 21)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    params = rng.standard_normal(N_PARAMS, dtype=np.float32)
    grad = rng.standard_normal(N_PARAMS, dtype=np.float32) * 1e-3
    a = rng.standard_normal((512, 784), dtype=np.float32)
    b = rng.standard_normal((784, 4096), dtype=np.float32)
    c = np.empty((512, 4096), dtype=np.float32)  # 8 MB out, 13 MB in: the caches hold none of the optimiser's arrays
    print(f"optimiser update of {N_PARAMS:,} float32 parameters after a cache-evicting matmul, "
          f"median of {args.rounds} (µs); current BLOCK = {optimizers.BLOCK:,}")
    print(f"| {'block':>9} | {'momentum SGD':>12} | {'Adam':>8} | {'momentum SGD, lr·g given':>24} |")
    print(f"|{'-' * 11}|{'-' * 14}|{'-' * 10}|{'-' * 26}|")
    with threadpool_limits(os.cpu_count() or 1):
        times: dict[tuple[str, int], list[float]] = {}
        makers = {"sgd": lambda: optimizers.SGD(0.01, momentum=0.9), "adam": lambda: optimizers.Adam(0.001),
                  "sgd_scaled": lambda: _blocked(optimizers.SGD(0.01, momentum=0.9))}
        opts = {}
        for name, make in makers.items():
            for size in SIZES:
                optimizers.BLOCK = size
                opts[name, size] = make()
                _step(opts[name, size], params, grad, name)
                times[name, size] = []
        for _ in range(args.rounds):
            for (name, size), opt in opts.items():
                optimizers.BLOCK = size
                np.matmul(a, b, out=c)
                t0 = time.perf_counter()
                _step(opt, params, grad, name)
                times[name, size].append(time.perf_counter() - t0)
    for size in SIZES:
        sgd, adam, scaled = (1e6 * float(np.median(times[name, size])) for name in makers)
        label = f"{size:,}" if size < N_PARAMS else "one pass"
        print(f"| {label:>9} | {sgd:>12.0f} | {adam:>8.0f} | {scaled:>24.0f} |")


_ZERO = np.zeros(N_PARAMS, dtype=np.float32)


def _blocked(opt: optimizers.SGD) -> optimizers.SGD:
    """The lr·g update walked in BLOCK-sized blocks, as if it needed a temporary."""
    opt._uses_scratch = lambda grad_scaled: True
    return opt


def _step(opt: optimizers.Optimizer, params: np.ndarray, grad: np.ndarray, name: str) -> None:
    """One update with lr 0 (or a zero lr·g), so the parameters stay as they are."""
    if name == "sgd_scaled":
        opt.step(params, _ZERO, 0.0, grad_scaled=True)
    else:
        opt.step(params, grad, 0.0)


if __name__ == "__main__":
    main()
