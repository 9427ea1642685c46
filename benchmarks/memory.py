"""Peak resident memory while loomnet trains on a large float32 dataset, measured in a fresh process.

    python -m benchmarks.memory --gb 2 --steps 200

Builds X (float32, 784 columns, ``--gb`` gigabytes) chunk by chunk so no float64 copy ever
exists, trains the benchmark MLP for ``--steps`` mini-batches (the steady state allocates
nothing, so more steps add no memory), and prints one JSON line: the data size, the peak RSS
(``ru_maxrss``, the interpreter and libraries included) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

N_FEATURES, HIDDEN, N_CLASSES = 784, (512, 256), 10


class _StopAfter:
    """Callback that asks the trainer to stop after a number of steps."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_train_begin(self, trainer): ...
    def on_epoch_end(self, trainer, record): ...
    def on_train_end(self, trainer): ...

    def on_batch_end(self, trainer, epoch, step, batch_size, loss):
        if step + 1 >= self.steps:
            trainer.stop_requested = True


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM). ``ru_maxrss`` would not do: Linux carries the
    parent's peak into a child across fork and exec."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure(gigabytes: float, steps: int, batch_size: int = 128, preprocess: str | None = None) -> dict:
    from loomnet.engine.layers import Dense
    from loomnet.engine.network import Sequential
    from loomnet.engine.optimizers import SGD

    baseline = peak_rss_bytes()
    n = int(gigabytes * 1e9) // (4 * N_FEATURES)
    rng = np.random.default_rng(0)
    X = np.empty((n, N_FEATURES), dtype=np.float32)
    for start in range(0, n, 65536):
        rng.standard_normal(out=X[start:start + 65536], dtype=np.float32)
    y = rng.integers(0, N_CLASSES, n)
    model = Sequential([Dense(w, "relu") for w in HIDDEN] + [Dense(N_CLASSES)], loss="softmax_cross_entropy",
                       optimizer=SGD(0.01, momentum=0.9), preprocess=preprocess)
    t0 = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=batch_size, callbacks=[_StopAfter(steps)])
    seconds = time.perf_counter() - t0
    peak = peak_rss_bytes()
    return {"data_bytes": int(X.nbytes + y.nbytes), "peak_rss_bytes": peak, "baseline_rss_bytes": baseline,
            "ratio": peak / (X.nbytes + y.nbytes), "steps": steps, "seconds": seconds, "preprocess": preprocess}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="dataset size in GB (float32 X)")
    parser.add_argument("--steps", type=int, default=200, help="training steps to run")
    parser.add_argument("--preprocess", default=None, help="loomnet preprocess option (default: none)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.gb, args.steps, preprocess=args.preprocess)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
