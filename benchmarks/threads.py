"""Thread-parallel training benchmark: samples/s per mode × workers × batch size, loss against wall
time, and thread vs process model search (wall time and peak memory).

    .venv/bin/python benchmarks/threads.py            # full run (~5-10 minutes on 2 idle cores)
    .venv/bin/python benchmarks/threads.py --quick    # small data, a smoke run of every section

Network: MLP 784-512-256-10, float32, SGD with momentum 0.9, synthetic 10-class data. Every
row is measured in this one process against the single-worker path (``workers=None``: one
Python thread, BLAS with every core) measured in the same rounds (``--repeats N``: N rounds
over all configurations of a batch size, median of the rounds). The "ceiling" row is N
processes that share nothing (own model, own data, cores // N BLAS threads each) training at
the same time: no N-worker scheme can beat it here. The "sync bound" row is N threads that
only compute the gradients of their share of each batch: a synchronous step also has to add
them up and update, so sync ×N cannot beat it. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are removed from this process's environment (it re-executes itself) so
OpenBLAS picks its own kernels.
"""

from __future__ import annotations

import os
import sys

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _PINNED) and __name__ == "__main__":
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import loomnet as ln  # noqa: E402
from loomnet.parallel import available_cores  # noqa: E402
from loomnet.training import Callback, Trainer  # noqa: E402

N_FEATURES, HIDDEN, N_CLASSES = 784, (512, 256), 10
BATCHES = (16, 32, 64, 128, 512)


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters of the benchmark's shape: learnable, so loss curves mean something."""
    from benchmarks.common import gaussian_clusters

    return gaussian_clusters(n, N_FEATURES, N_CLASSES, seed)


def build(seed: int = 0) -> ln.Sequential:
    layers = [ln.Dense(w, "relu") for w in HIDDEN] + [ln.Dense(N_CLASSES)]
    return ln.Sequential(layers, optimizer=ln.SGD(0.01, momentum=0.9), preprocess=None, seed=seed)


def samples_per_s(X, y, batch: int, samples: int, blas_threads: int | None = None, **parallel) -> float:
    """Training throughput of one pass over ``samples`` rows (after one warm-up pass)."""
    if blas_threads is not None:
        with threadpool_limits(blas_threads, user_api="blas"):
            return samples_per_s(X, y, batch, samples, **parallel)
    model = build()
    rows = min(samples, len(X))
    Trainer(model, X[:min(rows, 4 * batch)], y[:min(rows, 4 * batch)], epochs=1, batch_size=batch,
            shuffle=False, **parallel).run()  # warm-up: buffers, threads, caches
    trainer = Trainer(model, X[:rows], y[:rows], epochs=1, batch_size=batch, **parallel)
    return trainer.run().records[-1]["samples_per_s"]


# One of N processes that train at the same time, each its own model on its own copy of the
# data with cores // N BLAS threads: it warms up, says "ready", waits for "go", then trains.
_INDEPENDENT_CHILD = """
import sys, time, warnings
sys.path.insert(0, {root!r})
warnings.simplefilter("ignore")
from threadpoolctl import threadpool_limits
from benchmarks.threads import build, synthetic
from loomnet.training import Trainer
X, y = synthetic({samples}, seed={seed})
with threadpool_limits({blas}, user_api="blas"):
    model = build()
    Trainer(model, X[:4 * {batch}], y[:4 * {batch}], epochs=1, batch_size={batch}, shuffle=False).run()
    trainer = Trainer(model, X, y, epochs=1, batch_size={batch})
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    trainer.run()
    print(start, time.time(), flush=True)
"""


def independent_processes(batch: int, samples: int, n: int) -> float:
    """Samples/s of ``n`` processes that share nothing, training at the same time: all their
    rows over the wall time from the first start to the last finish (a process that finishes
    late, running alone for a while, does not inflate it).

    The most any ``n``-worker scheme can reach on this machine (no GIL, no shared parameters,
    no reduction): the ceiling against which the thread modes are read.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    blas = max(1, available_cores() // n)
    children = [subprocess.Popen([sys.executable, "-c", _INDEPENDENT_CHILD.format(
                    root=root, samples=samples, seed=i, blas=blas, batch=batch)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(n)]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"an independent-process child failed: {child.communicate()[1][-500:]}")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        spans = []
        for child in children:
            out, err = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"an independent-process child failed: {err[-500:]}")
            spans.append([float(v) for v in out.split()])
        return n * samples / (max(end for _, end in spans) - min(start for start, _ in spans))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


def gradient_threads(X, y, batch: int, samples: int, n: int) -> float:
    """Samples/s of ``n`` threads that only compute the gradients of their ``batch // n`` rows of
    every batch (own buffers; no reduction, no update, no barrier; cores // n BLAS threads each):
    what a synchronous step with ``n`` workers cannot beat."""
    import threading

    from loomnet.engine.params import StepWorkspace

    model = build()
    trainer = Trainer(model, X[:samples], y[:samples], batch_size=batch)  # prepares the data, builds the model
    rows, steps = batch // n, min(samples, len(X)) // batch
    order = trainer.epoch_order(0)

    def work(t: int, count: int) -> None:
        ws, grad = StepWorkspace(), np.zeros_like(model.params)
        for step in range(count):
            idx = order[step * batch + t * rows:step * batch + (t + 1) * rows]
            Xb, yb, wb = trainer.data.gather(idx, ws)
            model.loss_and_grad(model.params, Xb, yb, wb, grad=grad, ws=ws, normalizer=float(batch))

    with threadpool_limits(max(1, available_cores() // n), user_api="blas"):
        work(0, 2)  # warm-up
        threads = [threading.Thread(target=work, args=(t, steps)) for t in range(n)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return n * rows * steps / (time.perf_counter() - t0)


def configs(worker_counts: list[int]) -> list[tuple[str, dict]]:
    """(label, options) for every row after the single-worker baseline."""
    rows = [("single worker, 1 BLAS thread", {"blas_threads": 1})]
    for n in worker_counts:
        rows += [(f"sync ×{n} ({n} micro-batches)", {"workers": n, "mode": "sync", "micro_batches": n}),
                 (f"hogwild ×{n}", {"workers": n, "mode": "hogwild"}),
                 (f"locked ×{n}", {"workers": n, "mode": "locked"})]
    return rows + [("auto", {"workers": "auto"})]


def throughput_table(X, y, batches, samples_for, worker_counts, repeats: int = 1) -> list[dict]:
    """Every configuration once per round, ``repeats`` rounds, median of the rounds: a noisy
    stretch of a shared machine then spoils one round of a configuration, not its figure."""
    rows = []
    for batch in batches:
        samples = samples_for(batch)
        table = [("single worker (BLAS threads)", {}), *configs(worker_counts)]
        bounds = [(f"ceiling: {n} independent processes", n) for n in worker_counts if n <= available_cores()]
        sync_bounds = [(f"sync ×{n} bound: gradients only", n) for n in worker_counts if batch >= n]
        rates: dict[str, list[float]] = {label: [] for label, _ in table + bounds + sync_bounds}
        for _ in range(repeats):
            for label, options in table:
                rates[label].append(samples_per_s(X, y, batch, samples, **options))
            for label, n in bounds:
                rates[label].append(independent_processes(batch, samples, n))
            for label, n in sync_bounds:
                rates[label].append(gradient_threads(X, y, batch, samples, n))
        base = float(np.median(rates[table[0][0]]))
        for label in rates:
            rate = float(np.median(rates[label]))
            rows.append({"batch": batch, "config": label, "samples_per_s": rate, "vs": rate / base})
    return rows


class _LossClock(Callback):
    def __init__(self):
        self.t0, self.points = time.perf_counter(), []

    def on_epoch_end(self, trainer, record):
        self.points.append((time.perf_counter() - self.t0, record["loss"], record.get("val_accuracy")))


def loss_vs_time(X, y, Xv, yv, batch: int, epochs: int) -> dict[str, list]:
    curves = {}
    for label, options in [("single", {}), ("sync ×2", {"workers": 2, "micro_batches": 2}),
                           ("hogwild ×2", {"workers": 2, "mode": "hogwild"})]:
        clock = _LossClock()
        build().fit(X, y, epochs=epochs, batch_size=batch, validation_data=(Xv, yv), callbacks=[clock],
                    seed=1, **options)
        curves[label] = clock.points
    return curves


_SEARCH_CHILD = """
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.threads import synthetic
from loomnet import search
X, y = synthetic({n})
backend = sys.argv[1]
from loomnet.search.backends import peak_rss_mb  # VmHWM: this process's own peak, not its parent's
base = peak_rss_mb()
t0 = time.perf_counter()
result = search.grid_search({{"hidden": [(32,), (64,)], "learning_rate": [0.001, 0.003]}}, X, y, cv=2, epochs=1,
                            batch_size=128, backend=backend, n_jobs=2)
wall = time.perf_counter() - t0
children = {{}}
for r in result.results:
    children[r.pid] = max(children.get(r.pid, 0), r.peak_rss_mb)
me = peak_rss_mb()
import os
others = sum(v for pid, v in children.items() if pid != os.getpid())
print(json.dumps({{"backend": backend, "wall_s": wall, "data_mb": X.nbytes / 2**20, "parent_peak_mb": me,
                  "children_peak_mb": others, "total_peak_mb": me + others, "best": result.best_score}}))
"""


def search_memory(n: int) -> list[dict]:
    """Grid search (4 candidates × 2 folds) in a fresh process per backend: wall time and peak RSS."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _SEARCH_CHILD.format(root=root, n=n)
    rows = []
    for backend in ("threads", "processes"):
        out = subprocess.run([sys.executable, "-c", code, backend], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data: a smoke run of every section")
    parser.add_argument("--samples", type=int, help="training samples (default 60,000; 8,192 with --quick)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts to measure (default: 2 and the cores)")
    parser.add_argument("--sections", default="table,curves,search",
                        help="comma-separated subset of: table, curves, search")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--write", help="also write what is printed as a Markdown results page "
                        "(e.g. docs/results/threads.md)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds over every configuration of the table, median of the rounds (default 1)")
    args = parser.parse_args()
    if args.write:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script
        from benchmarks.common import write_results_page

        write_results_page(args.write, " ".join(["python benchmarks/threads.py", *sys.argv[1:]]),
                           "Results: training on threads", lambda: _run(args))
        return
    _run(args)


def _run(args: argparse.Namespace) -> None:
    warnings.simplefilter("ignore", RuntimeWarning)
    n = args.samples or (8192 if args.quick else 60_000)
    X, y = synthetic(n + 2000)
    X, Xv, y, yv = X[:n], X[n:], y[:n], y[n:]
    batches = (32, 128) if args.quick else BATCHES

    def samples_for(batch: int) -> int:  # about the same wall time per measurement
        return min(n, (2048 if args.quick else 4096) * max(1, batch // 32))

    print(f"loomnet thread benchmark, {datetime.date.today()} UTC, {available_cores()} cores, "
          f"MLP {N_FEATURES}-{'-'.join(map(str, HIDDEN))}-{N_CLASSES} float32, SGD momentum 0.9"
          + (" [--quick]" if args.quick else ""))
    sections = set(args.sections.split(","))
    results: dict[str, object] = {}
    if "table" in sections:
        worker_counts = args.workers or sorted({2, available_cores()})
        results["throughput"] = table = throughput_table(X, y, batches, samples_for, worker_counts, args.repeats)
        print(f"\n{'batch':>6}  {'configuration':<36}{'samples/s':>12}{'vs single':>11}")
        for row in table:
            print(f"{row['batch']:>6}  {row['config']:<36}{row['samples_per_s']:>12,.0f}{row['vs']:>10.2f}×")
    if "curves" in sections:
        results["curves"] = loss_curves_section(X, y, Xv, yv, n, 2 if args.quick else 5)
    if "search" in sections:
        results["search"] = search_section(4096 if args.quick else 20_000)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


def loss_curves_section(X, y, Xv, yv, n: int, epochs: int) -> dict[str, list]:
    curves = loss_vs_time(X, y, Xv, yv, batch=32, epochs=epochs)
    print(f"\nloss against wall time, batch 32, {epochs} epochs of {n:,} samples (val = {len(yv):,} held out)")
    print(f"{'configuration':<14}" + "".join(f"{'epoch ' + str(e + 1):>24}" for e in range(epochs)))
    for label, points in curves.items():
        cells = "".join(f"{f'{t:5.1f}s {loss:.3f} ({acc:.1%})':>24}" for t, loss, acc in points)
        print(f"{label:<14}{cells}")
    return curves


def search_section(n: int) -> list[dict]:
    search_rows = search_memory(n)
    print("\nmodel search: grid of 4 candidates × 2 folds = 8 models, 2 at a time")
    print(f"{'backend':<10}{'wall s':>8}{'data MB':>9}{'parent peak MB':>16}{'workers peak MB':>17}"
          f"{'total MB':>10}")
    for r in search_rows:
        print(f"{r['backend']:<10}{r['wall_s']:>8.1f}{r['data_mb']:>9.0f}{r['parent_peak_mb']:>16.0f}"
              f"{r['children_peak_mb']:>17.0f}{r['total_peak_mb']:>10.0f}")
    return search_rows


if __name__ == "__main__":
    main()
