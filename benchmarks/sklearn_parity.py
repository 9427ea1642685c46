"""loomnet.sklearn vs scikit-learn: held-out accuracy and training time, same hyperparameters.

    .venv/bin/python benchmarks/sklearn_parity.py            # full: 3 timed fits each, 60,000 x 784
    .venv/bin/python benchmarks/sklearn_parity.py --quick    # 1 fit each, 12,000 x 784, fewer epochs
    .venv/bin/python benchmarks/sklearn_parity.py --workers auto   # loomnet with its threads (an extra)

Both libraries get the same float32 arrays (standardised on the training split), the same
estimator parameters and the same random_state; the time is ``fit`` wall time, best of the
repeats, measured alternately. ``speedup`` = scikit-learn time / loomnet time (best over best);
``paired`` = the median over the repeats of each scikit-learn fit's time over the loomnet fit
that followed it, which a noisy stretch of a shared machine disturbs less. This script
unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for its own process so both libraries run on the
same, auto-detected BLAS kernels.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_name, None)

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SklearnMLP  # noqa: E402

from loomnet import datasets  # noqa: E402
from loomnet.engine.preprocessing import StandardScaler, train_test_split  # noqa: E402
from loomnet.sklearn import MLPClassifier as LoomnetMLP  # noqa: E402


def synthetic(n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An MNIST-shaped task: 784 features, 10 classes, class signal in 40 of the features, noisy."""
    data = datasets.make_classification(
        n_samples=n_samples, n_features=784, n_informative=40, n_classes=10, noise=6.0, seed=seed
    )
    return data.X, data.y


def tasks(quick: bool) -> list[tuple[str, np.ndarray, np.ndarray, dict]]:
    small = dict(hidden_layer_sizes=(100,), max_iter=200)
    out = [(name, *_xy(datasets.load(name)), small) for name in ("iris", "wine", "breast_cancer", "digits")]
    n = 12_000 if quick else 60_000
    out.append(
        (
            f"synthetic {n // 1000}k x 784",
            *synthetic(n),
            dict(hidden_layer_sizes=(512, 256), max_iter=2 if quick else 5),
        )
    )
    return out


def _xy(data) -> tuple[np.ndarray, np.ndarray]:
    return data.X, data.y


def timed_fit(cls: type, params: dict, X: np.ndarray, y: np.ndarray) -> tuple[float, object]:
    t0 = time.perf_counter()
    estimator = cls(**params).fit(X, y)
    return time.perf_counter() - t0, estimator


def run(quick: bool, repeats: int, workers: int | str = 1) -> list[dict]:
    rows = []
    for name, X, y, params in tasks(quick):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, seed=0)
        scaler = StandardScaler().fit(X_train)
        X_train = scaler.transform(X_train).astype(np.float32)
        X_test = scaler.transform(X_test).astype(np.float32)
        params = dict(params, random_state=0)
        loomnet_extra = {} if workers == 1 else {"n_workers": workers}
        times: dict[str, list[float]] = {"sklearn": [], "loomnet": []}
        fitted = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(repeats):
                for label, cls, extra in (("sklearn", SklearnMLP, {}), ("loomnet", LoomnetMLP, loomnet_extra)):
                    seconds, fitted[label] = timed_fit(cls, {**params, **extra}, X_train, y_train)
                    times[label].append(seconds)
        rows.append(
            {
                "task": name,
                "shape": f"{X_train.shape[0]}x{X_train.shape[1]}",
                "epochs": f"{fitted['sklearn'].n_iter_}/{fitted['loomnet'].n_iter_}",
                "acc_sklearn": fitted["sklearn"].score(X_test, y_test),
                "acc_loomnet": fitted["loomnet"].score(X_test, y_test),
                "t_sklearn": min(times["sklearn"]),
                "t_loomnet": min(times["loomnet"]),
                # each scikit-learn fit over the loomnet fit right after it, median over the pairs:
                # a noisy stretch of a shared machine then spoils one pair, not a contender's best
                "paired": float(np.median([s / n for s, n in zip(times["sklearn"], times["loomnet"], strict=True)])),
            }
        )
        print(_format_row(rows[-1]), flush=True)
    return rows


HEADER = (
    f"| {'task':<22} | {'train':>9} | {'epochs sk/ln':>12} | {'acc sklearn':>11} | {'acc loomnet':>11} "
    f"| {'fit s sklearn':>13} | {'fit s loomnet':>13} | {'speedup':>7} | {'paired':>6} |"
)


def _format_row(r: dict) -> str:
    return (
        f"| {r['task']:<22} | {r['shape']:>9} | {r['epochs']:>12} | {r['acc_sklearn']:>11.4f} "
        f"| {r['acc_loomnet']:>11.4f} | {r['t_sklearn']:>13.3f} | {r['t_loomnet']:>13.3f} "
        f"| {r['t_sklearn'] / r['t_loomnet']:>6.2f}x | {r['paired']:>5.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller large task, one fit each")
    parser.add_argument("--workers", default="1", help="loomnet's n_workers (an extra; default 1 = same as sklearn)")
    parser.add_argument("--repeats", type=int, default=None, help="timed fits per library (default 3, quick 1)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    print(
        f"loomnet.sklearn vs scikit-learn, float32 input, best of {repeats}; adam, batch_size='auto'; "
        f"loomnet n_workers={workers}"
    )
    print(HEADER)
    print("|" + "|".join("-" * (len(cell)) for cell in HEADER.split("|")[1:-1]) + "|")
    rows = run(args.quick, repeats, workers)
    worst = max(abs(r["acc_sklearn"] - r["acc_loomnet"]) for r in rows)
    print(f"largest accuracy gap: {100 * worst:.2f} points")


if __name__ == "__main__":
    main()
