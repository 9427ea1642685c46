"""Inference: onnxruntime on loomnet's exported graph against ``model.predict_proba``, in one run.

    python -m benchmarks.onnx_inference [--rows 20000] [--rounds 5]

Both sides get the same rows; a ratio is the median over rounds of each round's own ratio.
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from this process's environment.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import onnxruntime as ort

    import loomnet as ln
    from loomnet.onnx import export

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.rows)
    print(f"{args.rows} rows × 784 features; rows/s (median of {args.rounds} rounds)")
    print(f"{'network':<22}{'dtype':<9}{'loomnet':>12}{'onnxruntime':>14}{'ort / loomnet':>15}")
    for hidden in ((512, 256), (64,)):
        for dtype in ("float32", "float64"):
            model = ln.Sequential([*(ln.Dense(h, "relu") for h in hidden), ln.Dense(10)], dtype=dtype, seed=0)
            model.fit(X[:2000], y[:2000], epochs=1, batch_size=256)
            session = ort.InferenceSession(export(model, dtype=dtype).SerializeToString())
            Xd = X.astype(dtype)
            loom_rates, ort_rates = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                model.predict_proba(Xd)
                loom_rates.append(args.rows / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                session.run(["probabilities"], {"X": Xd})
                ort_rates.append(args.rows / (time.perf_counter() - t0))
            ratio = statistics.median(o / l for o, l in zip(ort_rates, loom_rates, strict=True))
            print(f"{'-'.join(map(str, hidden)):<22}{dtype:<9}{statistics.median(loom_rates):>12,.0f}"
                  f"{statistics.median(ort_rates):>14,.0f}{ratio:>15.2f}")
    return 0


if __name__ == "__main__":
    if any(name in os.environ for name in _PINNED):
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.onnx_inference", *sys.argv[1:]],
                  {k: v for k, v in os.environ.items() if k not in _PINNED})
    sys.exit(main())
