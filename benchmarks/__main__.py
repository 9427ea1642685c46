"""loomnet against PyTorch (CPU) and scikit-learn: training speed, small-network step time,
inference throughput and peak memory, in one warm process, contenders alternating.

    python -m benchmarks            # the full suite (a few minutes on 2 idle cores)
    python -m benchmarks --quick    # smaller data, one repeat: a smoke run of every section

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from this process's environment (the
process re-executes itself without them) so OpenBLAS picks its own kernels for this CPU.
"""

from __future__ import annotations

import os
import sys

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(name in os.environ for name in _PINNED) and __name__ == "__main__":
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *sys.argv[1:]], env)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from .common import (  # noqa: E402
    format_table,
    inference_flops_per_sample,
    median,
    sgemm_peak_gflops,
    synthetic_classification,
    training_flops_per_sample,
    weight_counts,
    write_results_page,
)
from .contenders import LoomnetMLP, NumpyLoop, ProductsOnly, TorchMLP, contenders, torch_available  # noqa: E402

MLP = (784, (512, 256), 10)
SMALL = (64, (32,), 10)
TARGETS = {  # from issue 6
    "vs PyTorch, batch 128": 1.25,
    "vs PyTorch, batch 512": 1.25,
    "vs PyTorch, small network": 5.0,
    "vs scikit-learn, batch 128": 1.4,
    "fraction of sgemm peak, batch 512": 0.80,
}


class _Threads:
    """Set the thread count of every library in the process (BLAS pools and PyTorch's)."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(self.n)
        if torch_available():
            import torch

            self._torch = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        self._limits.restore_original_limits()
        if torch_available():
            import torch

            torch.set_num_threads(self._torch)


def _progress(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


def bench_training(args) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, list[float]]]]:
    """samples/s per batch size and contender (their summary), and every epoch's time."""
    n_features, hidden, n_classes = MLP
    X, y = synthetic_classification(args.samples, n_features, n_classes)
    kinds = contenders(include_torch=not args.no_torch) + [NumpyLoop, ProductsOnly]
    results, all_times = {}, {}
    with _Threads(args.threads):
        for batch in args.batches:
            runners = [kind(n_features, hidden, n_classes) for kind in kinds]
            warm = X[: max(batch * 20, 2048)], y[: max(batch * 20, 2048)]
            for runner in runners:
                runner.train_epoch(*warm, batch)
            times: dict[str, list[float]] = {r.name: [] for r in runners}
            for repeat in range(args.repeats):
                for runner in runners:  # alternate, so a noisy moment hits every contender
                    times[runner.name].append(runner.train_epoch(X, y, batch))
                    _progress(f"batch {batch}, {runner.name}, epoch {repeat + 1}: "
                              f"{args.samples / times[runner.name][-1]:,.0f} samples/s")
            results[batch] = {name: args.samples / args.summary(t) for name, t in times.items()}
            all_times[batch] = times
    return results, all_times


def speedup(times: dict[str, list[float]], name: str, other: str, statistic: str) -> float:
    """How many times faster ``name`` ran than ``other``. Median: the median over the rounds of
    each round's ratio (a round runs every contender once, so a slow moment of the shared
    machine mostly hits both sides of a ratio); best: the ratio of the two fastest runs."""
    if statistic == "best":
        return min(times[other]) / min(times[name])
    return median([t_other / t_name for t_name, t_other in zip(times[name], times[other], strict=True)])


def training_rows(results: dict[int, dict[str, float]], times: dict[int, dict[str, list[float]]], peak: float,
                  statistic: str) -> list[list]:
    flops = training_flops_per_sample(weight_counts(*MLP))
    rows = []
    for batch, rate in results.items():
        for name, sps in rate.items():
            gflops = sps * flops / 1e9
            rows.append([batch, name, sps, gflops, gflops / peak,
                         speedup(times[batch], name, "pytorch", statistic) if "pytorch" in rate else None,
                         speedup(times[batch], name, "scikit-learn", statistic)])
    return rows


def bench_small(args) -> tuple[list[list], dict]:
    n_features, hidden, n_classes = SMALL
    batch = 32
    X, y = synthetic_classification(args.small_steps * batch, n_features, n_classes, seed=1)
    kinds = contenders(include_torch=not args.no_torch)
    with _Threads(1):
        runners = [kind(n_features, hidden, n_classes) for kind in kinds]
        for runner in runners:
            runner.train_epoch(X[:4096], y[:4096], batch)
        times: dict[str, list[float]] = {r.name: [] for r in runners}
        for repeat in range(args.repeats):
            for runner in runners:
                times[runner.name].append(runner.train_epoch(X, y, batch))
                _progress(f"small network, {runner.name}, epoch {repeat + 1}: "
                          f"{times[runner.name][-1] / args.small_steps * 1e6:.1f} µs/step")
    us = {name: args.summary(t) / args.small_steps * 1e6 for name, t in times.items()}
    slower = {name: speedup(times, "loomnet", name, args.statistic) for name in times}
    rows = [[name, step_us, slower[name]] for name, step_us in us.items()]
    return rows, us, slower


def bench_inference(args) -> tuple[list[list], dict]:
    n_features, hidden, n_classes = MLP
    X, _ = synthetic_classification(args.inference_rows, n_features, n_classes, seed=2)
    flops = inference_flops_per_sample(weight_counts(*MLP))
    kinds = [LoomnetMLP] + ([TorchMLP] if torch_available() and not args.no_torch else [])
    times: dict[str, list[float]] = {}
    with _Threads(args.threads):
        runners = [kind(n_features, hidden, n_classes) for kind in kinds]
        for runner in runners:
            runner.predict(X[:8192])
            times[runner.name] = []
        for _ in range(args.repeats):
            for runner in runners:
                t0 = time.perf_counter()
                runner.predict(X)
                times[runner.name].append(time.perf_counter() - t0)
                _progress(f"inference, {runner.name}: {args.inference_rows / times[runner.name][-1]:,.0f} rows/s")
    rate = {name: args.inference_rows / args.summary(t) for name, t in times.items()}
    rows = [[name, r, r * flops / 1e9, speedup(times, name, "pytorch", args.statistic) if "pytorch" in rate else None]
            for name, r in rate.items()]
    return rows, rate


def bench_memory(args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--gb", str(args.memory_gb), "--steps", str(args.memory_steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _versions() -> str:
    import sklearn

    parts = [f"numpy {np.__version__}", f"scikit-learn {sklearn.__version__}"]
    if torch_available():
        import torch

        parts.append(f"torch {torch.__version__}")
    return ", ".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one repeat: a smoke run")
    parser.add_argument("--write", help="also write what is printed as a Markdown results page (e.g. "
                        "docs/results/performance.md)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for the MLP runs")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds, every contender once per round "
                        "(default 5)")
    parser.add_argument("--statistic", choices=["median", "best"], default="median",
                        help="median (default): speeds are medians over the rounds and every ratio is the median "
                             "of the rounds' own ratios; best: the fastest round of each, and their ratio")
    parser.add_argument("--only", nargs="+", choices=["training", "small", "inference", "memory"],
                        help="run only these sections")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    parser.add_argument("--json", help="also write every number to this JSON file")
    parser.add_argument("--samples", type=int, help="training rows per epoch (default 60,000; quick 8,192)")
    parser.add_argument("--inference-rows", type=int, help="rows to predict (default 1,000,000; quick 50,000)")
    parser.add_argument("--memory-gb", type=float, help="dataset size for the memory run (default 2; quick 0.2)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 5)
    args.summary = median if args.statistic == "median" else min  # of times: the fastest repeat is the min
    args.samples = args.samples or (8192 if quick else 60000)
    args.batches = (128, 512)
    args.small_steps = 500 if quick else 4000
    args.inference_rows = args.inference_rows or (50_000 if quick else 1_000_000)
    args.memory_gb = args.memory_gb or (0.2 if quick else 2.0)
    args.memory_steps = 20 if quick else 200
    return args


def main(argv: list[str] | None = None) -> dict:
    sys.stdout.reconfigure(line_buffering=True)  # the tables appear as each section ends
    args = parse_args(argv)
    if args.write:
        command = " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)])
        return write_results_page(args.write, command, "Results: speed against PyTorch and scikit-learn",
                                  lambda: _run(args))
    return _run(args)


def _run(args: argparse.Namespace) -> dict:
    sections = set(args.only or ["training", "small", "inference", "memory"])
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report: dict = {"date": stamp, "threads": args.threads, "quick": args.quick, "versions": _versions(),
                    "statistic": args.statistic, "repeats": args.repeats}
    print(f"# loomnet benchmarks — {stamp}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.threads} threads; "
          f"{_versions()}; {args.statistic} of {args.repeats}{'; QUICK run' if args.quick else ''}")
    if not torch_available() or args.no_torch:
        print("PyTorch is not installed (or --no-torch): its columns stay empty. `pip install torch` to compare.")
    peak = sgemm_peak_gflops(args.threads)
    ratios: dict[str, float | None] = {}
    if "training" in sections:
        rates, epoch_times = bench_training(args)
        peak = max(peak, sgemm_peak_gflops(args.threads))  # measured before and after: the better of the two
    report["sgemm_peak_gflops"] = peak
    print(f"\nMeasured sgemm peak (NumPy BLAS, 2048³ float32, {args.threads} threads, best of runs before and "
          f"after training): {peak:.1f} GFLOP/s")
    if "training" in sections:
        rows = training_rows(rates, epoch_times, peak, args.statistic)
        report["training"] = {str(b): r for b, r in rates.items()}
        report["training_epoch_seconds"] = {str(b): t for b, t in epoch_times.items()}
        print(f"\n## Training: MLP 784-512-256-10, ReLU, softmax cross-entropy, momentum SGD, one epoch of "
              f"{args.samples:,} samples, float32, {args.threads} threads")
        print(format_table(["batch", "library", "samples/s", "GFLOP/s", "of peak", "× PyTorch", "× sklearn"], rows))
        for b in args.batches:
            if "pytorch" in rates[b]:
                ratios[f"vs PyTorch, batch {b}"] = speedup(epoch_times[b], "loomnet", "pytorch", args.statistic)
            ratios[f"vs scikit-learn, batch {b}"] = speedup(epoch_times[b], "loomnet", "scikit-learn", args.statistic)
        flops = training_flops_per_sample(weight_counts(*MLP))
        ratios["fraction of sgemm peak, batch 512"] = rates[512]["loomnet"] * flops / 1e9 / peak
    if "small" in sections:
        rows, us, slower = bench_small(args)
        report["small_us_per_step"] = us
        print(f"\n## Small network: 64-32-10, batch 32, one thread, {args.small_steps:,} steps per epoch")
        print(format_table(["library", "µs/step", "× slower than loomnet"], rows))
        if "pytorch" in us:
            ratios["vs PyTorch, small network"] = slower["pytorch"]
    if "inference" in sections:
        rows, rate = bench_inference(args)
        report["inference_rows_per_s"] = rate
        print(f"\n## Inference: predict labels for {args.inference_rows:,} rows, MLP 784-512-256-10, chunks of 8192, "
              f"{args.threads} threads (PyTorch under torch.inference_mode)")
        print(format_table(["library", "rows/s", "GFLOP/s", "× PyTorch"], rows))
    if "memory" in sections:
        mem = bench_memory(args)
        report["memory"] = mem
        print(f"\n## Memory: peak RSS training on {mem['data_bytes'] / 1e9:.2f} GB of float32 data "
              f"({mem['steps']} steps, fresh process, interpreter included)")
        print(format_table(["data", "peak RSS", "ratio", "target"],
                           [[f"{mem['data_bytes'] / 1e9:.2f} GB", f"{mem['peak_rss_bytes'] / 1e9:.2f} GB",
                             f"{mem['ratio']:.2f}×", "<= 1.30×"]]))
        ratios["peak RSS / data size (at most)"] = mem["ratio"]

    if ratios:
        print("\n## Targets (issue 6)")
        rows = []
        for name, value in ratios.items():
            target = TARGETS.get(name, 1.3 if "RSS" in name else None)
            if target is None or value is None:
                continue
            ok = value <= target if "RSS" in name else value >= target
            rows.append([name, f"{value:.2f}", f"{'<=' if 'RSS' in name else '>='} {target:g}", "yes" if ok else "NO"])
        print(format_table(["measure", "value", "target", "met"], rows))
    report["ratios"] = ratios
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
