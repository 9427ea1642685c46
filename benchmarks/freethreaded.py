"""Thread-parallel training with and without the GIL: the same measurements on the default CPython
and on free-threaded CPython (3.13t), in one run, each against the single worker on its own
interpreter.

    make bench-ft                                            # builds .venv-ft first, then this
    .venv/bin/python -m benchmarks.freethreaded --ft-python .venv-ft/bin/python [--quick]
    ... --write docs/results/freethreaded.md                 # also write the results page

What is measured (samples/s of one pass after a warm-up pass, float32, SGD with momentum 0.9):

- the benchmark MLP 784-512-256-10 at batch 32 and 128: Hogwild ×2 and sync ×2;
- the small network 64-32-10 at batch 32: Hogwild ×2 and sync ×2;
- a search over 8 small models (64-32-10 and 64-64-10, 4 candidates × 2 folds, 10 epochs of
  4,096 rows at batch 32) on 2 threads against 1 thread.

"single" is ``workers=None``: one Python thread, BLAS with every core. The interpreters take
turns (``--repeats`` rounds, each round one child process per interpreter). Inside a round every
configuration runs three times, interleaved with the others, and its best run counts (load from
other programs only slows a run down); the ratio of a round is measured inside one child, and
the table shows the median over rounds. Each child
removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from its environment so OpenBLAS picks its own
kernels.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from benchmarks.common import gaussian_clusters

ROOT = Path(__file__).resolve().parent.parent
_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

NETWORKS = {"mlp": (784, (512, 256), 10), "small": (64, (32,), 10)}
# (label, network, batch, options): each row of the table is one of these against "single" of its network and batch
CASES = [
    ("MLP 784-512-256-10, batch 32", "mlp", 32),
    ("MLP 784-512-256-10, batch 128", "mlp", 128),
    ("small 64-32-10, batch 32", "small", 32),
]
MODES = [("hogwild ×2", {"workers": 2, "mode": "hogwild"}), ("sync ×2", {"workers": 2, "micro_batches": 2})]
SEARCH_LABEL = "search, 8 small models"
TRIES = 3  # each configuration is run this many times per round, interleaved with the others; the best counts


# ------------------------------------------------------------------ the child: one interpreter, one round
def _model(network: str):
    import loomnet as ln

    _, hidden, n_classes = NETWORKS[network]
    layers = [ln.Dense(w, "relu") for w in hidden] + [ln.Dense(n_classes)]
    return ln.Sequential(layers, optimizer=ln.SGD(0.01, momentum=0.9), preprocess=None, seed=0)


def _samples_per_s(network: str, batch: int, samples: int, **parallel) -> float:
    from loomnet.training import Trainer

    n_features, _, n_classes = NETWORKS[network]
    X, y = gaussian_clusters(samples, n_features, n_classes)
    model = _model(network)
    Trainer(model, X[:8 * batch], y[:8 * batch], epochs=1, batch_size=batch, shuffle=False, **parallel).run()
    return Trainer(model, X, y, epochs=1, batch_size=batch, **parallel).run().records[-1]["samples_per_s"]


def _search_seconds(n_jobs: int, rows: int, epochs: int) -> float:
    from loomnet import search

    X, y = gaussian_clusters(rows, *NETWORKS["small"][::2])
    t0 = time.perf_counter()
    search.grid_search({"hidden": [(32,), (64,)], "learning_rate": [0.001, 0.003]}, X, y, cv=2, epochs=epochs,
                       batch_size=32, backend="threads", n_jobs=n_jobs)
    return time.perf_counter() - t0


def measure(quick: bool) -> dict:
    """One round on this interpreter: samples/s per case and mode, and the search's wall time."""
    import numpy as np

    import loomnet
    from loomnet.parallel import available_cores
    from loomnet.parallel.cores import gil_enabled

    warnings.simplefilter("ignore", RuntimeWarning)
    rates: dict[str, dict[str, float]] = {}
    tries = 1 if quick else TRIES
    for label, network, batch in CASES:
        samples = (2048 if quick else 8192) * (batch // 32) * (8 if network == "small" else 1)
        configs = [("single", {})] + MODES
        rates[label] = {name: 0.0 for name, _ in configs}
        for _ in range(tries):  # interleaved, best of: load from elsewhere only ever slows a run down
            for name, options in configs:
                rates[label][name] = max(rates[label][name], _samples_per_s(network, batch, samples, **options))
    rows, epochs = (2048, 3) if quick else (8192, 10)  # 8 jobs of 0.2 s each: long enough to time
    search = {"1 thread": float("inf"), "2 threads": float("inf")}
    for _ in range(tries):
        for n_jobs, name in ((1, "1 thread"), (2, "2 threads")):
            search[name] = min(search[name], _search_seconds(n_jobs, rows, epochs))
    return {"python": platform.python_version(), "gil": gil_enabled(), "cores": available_cores(),
            "numpy": np.__version__, "loomnet": loomnet.__version__, "rates": rates, "search_s": search}


# ------------------------------------------------------------------ the parent: both interpreters, ratios
def _run_child(python: str, quick: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*_PINNED, "PYTHON_GIL")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [python, "-m", "benchmarks.freethreaded", "--measure"] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child on {python} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratios(round_: dict) -> dict[str, float]:
    """Each row's speed-up against the single worker of the same round (search: wall-time ratio)."""
    out = {}
    for label, rates in round_["rates"].items():
        for mode, _ in MODES:
            out[f"{label}: {mode}"] = rates[mode] / rates["single"]
    out[f"{SEARCH_LABEL}: 2 threads"] = round_["search_s"]["1 thread"] / round_["search_s"]["2 threads"]
    return out


def summarise(rounds: dict[str, list[dict]]) -> list[tuple[str, list[float]]]:
    """Rows (label, [median ratio per interpreter]) and a last row: the single worker's speed on
    each interpreter relative to the first (the interpreter's own overhead, not a thread effect)."""
    names = list(rounds)
    labels = list(ratios(rounds[names[0]][0]))
    rows = [(label, [statistics.median(ratios(r)[label] for r in rounds[name]) for name in names])
            for label in labels]
    first_case = CASES[0][0]
    base = statistics.median(r["rates"][first_case]["single"] for r in rounds[names[0]])
    rows.append((f"{first_case}: single, samples/s vs {names[0]}",
                 [statistics.median(r["rates"][first_case]["single"] for r in rounds[name]) / base for name in names]))
    return rows


def render(rounds: dict[str, list[dict]], quick: bool) -> str:
    names = list(rounds)
    info = {name: rounds[name][0] for name in names}
    width = max(len(label) for label, _ in summarise(rounds)) + 2
    lines = [f"loomnet free-threaded benchmark, {datetime.date.today()} UTC, {info[names[0]]['cores']} cores, "
             f"{len(rounds[names[0]])} round(s), median{' [--quick]' if quick else ''}", ""]
    head = "".join(f"{name:>22}" for name in names)
    lines.append(f"{'speed-up against the single worker':<{width}}{head}")
    for label, values in summarise(rounds):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>21.2f}×" for v in values))
    lines.append("")
    for name in names:
        r = info[name]
        lines.append(f"{name}: Python {r['python']}, GIL {'on' if r['gil'] else 'off'}, numpy {r['numpy']}, "
                     f"loomnet {r['loomnet']}")
    return "\n".join(lines)


def _page(text: str) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "# Results: threads without the GIL\n\n"
        f"Generated by `make bench-ft` (`python -m benchmarks.freethreaded --write docs/results/freethreaded.md`) "
        f"on {stamp}; {platform.machine()}, {os.cpu_count()} cores, a shared machine: compare the ratios within "
        "one run, not with other days. Do not edit by hand.\n\n"
        "Each ratio is samples/s against the single worker (`workers=None`) measured by the same interpreter "
        "in the same round; the search row is the wall time of 8 models on 1 thread over 2 threads.\n\n"
        f"```text\n{text}\n```\n"
    )


def _interpreter_name(python: str) -> str:
    code = "import sys; print('free-threaded' if not getattr(sys, '_is_gil_enabled', lambda: True)() else 'GIL')"
    kind = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return f"{version} {kind}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ft-python", default=str(ROOT / ".venv-ft" / "bin" / "python"),
                        help="the free-threaded interpreter (default: .venv-ft/bin/python, made by make test-ft)")
    parser.add_argument("--quick", action="store_true", help="less data per measurement: a smoke run")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per interpreter, alternating (default 2)")
    parser.add_argument("--write", type=Path, help="also write the results as a Markdown page")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.quick)))
        return
    pythons = [sys.executable]
    if Path(args.ft_python).exists():
        pythons.append(args.ft_python)
    else:
        print(f"{args.ft_python} not found (run make test-ft first): measuring {sys.executable} alone")
    names = [_interpreter_name(p) for p in pythons]
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.repeats):
        for name, python in zip(names, pythons, strict=True):
            rounds[name].append(_run_child(python, args.quick))
    text = render(rounds, args.quick)
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(_page(text))


if __name__ == "__main__":
    main()
