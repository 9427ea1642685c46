"""This checkout against another loomnet source tree, in one run: every training mode, the
scikit-learn estimator and the CLI, alternating between the two trees round by round.

    python -m benchmarks.versions --against /path/to/other/loomnet    # e.g. a worktree of an older commit
    python -m benchmarks.versions --against ../old --quick            # smaller data, two rounds

Each measurement is a fresh child process with the tree's ``src`` first on ``PYTHONPATH``; a ratio
is the median over rounds of (this tree's samples/s) / (the other tree's) measured in the same
round, so a slow stretch of a shared machine hits both sides. The same data and the same options
go to both trees; the new tree's default micro-batches (8, whatever the machine) are timed as an
extra row. It also times the CLI and the estimator against the core API on this tree, and
``workers="auto"`` against the best of the fixed plans it considers. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
are removed from the children's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# (label, fit options); each measured on both trees with identical options
CONFIGS = [
    ("plain loop", {}),
    ("sync ×2, 2 micro-batches", {"workers": 2, "mode": "sync", "micro_batches": 2}),
    ("hogwild ×2", {"workers": 2, "mode": "hogwild"}),
    ("locked ×2", {"workers": 2, "mode": "locked"}),
]
NEW_ONLY = [("sync ×2, default micro-batches", {"workers": 2, "mode": "sync"})]
# the fixed plans workers="auto" chooses from on 2 cores (loomnet.parallel.auto.candidate_plans)
AUTO_CANDIDATES = [{"workers": 2, "mode": "sync", "micro_batches": 2}, {}, {"workers": 2, "mode": "hogwild"},
                   {"workers": 2, "mode": "locked"}]

CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import loomnet as ln
    spec = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((spec["rows"], spec["features"]), dtype=np.float32)
    y = np.argmax(X @ rng.standard_normal((spec["features"], 10), dtype=np.float32), axis=1)
    def model():
        return ln.Sequential([ln.Dense(256, "relu"), ln.Dropout(0.1), ln.Dense(128, "relu"), ln.Dense(10)],
                             optimizer=ln.SGD(0.01, momentum=0.9), l2=1e-4, seed=0)
    if spec["kind"] == "fit":
        m = model()
        m.fit(X[:4 * spec["batch"]], y[:4 * spec["batch"]], epochs=1, batch_size=spec["batch"], **spec["options"])
        m = model()
        history = m.fit(X, y, epochs=spec["epochs"], batch_size=spec["batch"], **spec["options"])
        rates = history["samples_per_s"][1:] or history["samples_per_s"]
        print(json.dumps({"rate": float(np.median(rates))}))
    elif spec["kind"] == "estimator":
        from loomnet.sklearn import MLPClassifier
        import warnings
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(256, 128), solver="sgd", batch_size=spec["batch"], max_iter=1,
                            random_state=0, **spec["options"])
        est.fit(X[:4 * spec["batch"]], y[:4 * spec["batch"]])
        t0 = time.perf_counter()
        est.set_params(max_iter=spec["epochs"]).fit(X, y)
        print(json.dumps({"rate": spec["epochs"] * len(X) / (time.perf_counter() - t0)}))
    elif spec["kind"] == "core_like_cli":
        m = ln.Sequential([ln.Dense(256, "relu"), ln.Dense(128, "relu"), ln.Dense(10)], optimizer="sgd",
                          learning_rate=0.01, seed=0)
        m.fit(X[:4 * spec["batch"]], y[:4 * spec["batch"]], epochs=1, batch_size=spec["batch"])
        history = ln.Sequential([ln.Dense(256, "relu"), ln.Dense(128, "relu"), ln.Dense(10)], optimizer="sgd",
                                learning_rate=0.01, seed=0).fit(X, y, epochs=spec["epochs"], batch_size=spec["batch"])
        rates = history["samples_per_s"][1:] or history["samples_per_s"]
        print(json.dumps({"rate": float(np.median(rates))}))
    elif spec["kind"] == "core_like_estimator":
        m = ln.Sequential([ln.Dense(256, "relu"), ln.Dense(128, "relu"), ln.Dense(10)],
                          optimizer=ln.SGD(0.001, momentum=0.9, nesterov=True), l2=1e-4, preprocess=None, seed=0)
        m.fit(X[:4 * spec["batch"]], y[:4 * spec["batch"]], epochs=1, batch_size=spec["batch"])
        t0 = time.perf_counter()
        m.fit(X, y, epochs=spec["epochs"], batch_size=spec["batch"])
        print(json.dumps({"rate": spec["epochs"] * len(X) / (time.perf_counter() - t0)}))
""")


def _child(tree: Path, spec: dict) -> float:
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    env["PYTHONPATH"] = str(tree / "src")
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env, capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{tree}: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def _cli_rate(tree: Path, rows: int, features: int, batch: int, epochs: int, workers: int | None) -> float:
    """samples/s the CLI reports for its epochs (its own record of the training loop)."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((rows, features), dtype=np.float32)
        y = np.argmax(X @ rng.standard_normal((features, 10), dtype=np.float32), axis=1)
        np.savez(Path(tmp, "d.npz"), X=X, y=y)
        env = {k: v for k, v in os.environ.items() if k not in _PINNED}
        env["PYTHONPATH"] = str(tree / "src")
        # --recipe none: the tabular recipe would add dropout, robust scaling and AdamW, another network
        args = [sys.executable, "-m", "loomnet", "train", "d.npz", "--recipe", "none", "--hidden", "256,128",
                "--batch-size", str(batch),
                "--epochs", str(epochs), "--val-fraction", "0", "--optimizer", "sgd", "--lr", "0.01", "--no-plot",
                "--json", "-o", "m.loom"] + ([] if workers is None else ["--workers", str(workers)])
        out = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip().splitlines()[-1])
        from loomnet.io.modelfile import open_model

        records = open_model(Path(tmp, "m.loom")).model.history.records
        rates = [r["samples_per_s"] for r in records[1:]] or [records[0]["samples_per_s"]]
        return float(statistics.median(rates))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, type=Path, help="the other loomnet source tree")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rows, epochs, rounds = (6000, 3, 2) if args.quick else (24000, 4, 3)
    rounds = args.rounds or rounds
    features = 256
    results: dict[str, list[float]] = {}
    print(f"this tree: {HERE}\nagainst:   {args.against.resolve()}\n{rows} rows × {features} features, "
          f"MLP 256-128-10 with dropout and L2, momentum SGD, {epochs} epochs, {rounds} rounds\n")
    for _ in range(rounds):
        for batch in (32, 128):
            for label, options in CONFIGS:
                spec = {"kind": "fit", "rows": rows, "features": features, "batch": batch, "epochs": epochs,
                        "options": options}
                new, old = _child(HERE, spec), _child(args.against, spec)
                results.setdefault(f"{label}, batch {batch}", []).append(new / old)
            for label, options in NEW_ONLY:
                base = {"kind": "fit", "rows": rows, "features": features, "batch": batch, "epochs": epochs}
                new = _child(HERE, {**base, "options": options})
                old = _child(args.against, {**base, "options": CONFIGS[1][1]})
                results.setdefault(f"{label} (new) vs 2 micro-batches (old), batch {batch}", []).append(new / old)
        est = {"kind": "estimator", "rows": rows, "features": features, "batch": 128, "epochs": epochs,
               "options": {}}
        results.setdefault("estimator (plain loop), batch 128", []).append(
            _child(HERE, est) / _child(args.against, {**est, "options": {"n_workers": 1}}))
        core = _child(HERE, {**est, "kind": "core_like_estimator"})
        results.setdefault("this tree: estimator / core API, batch 128", []).append(_child(HERE, est) / core)
        cli = _cli_rate(HERE, rows, features, 128, epochs, None)
        api = _child(HERE, {"kind": "core_like_cli", "rows": rows, "features": features, "batch": 128,
                            "epochs": epochs})
        results.setdefault("this tree: CLI / core API (same network and options), batch 128", []).append(cli / api)
    for _ in range(rounds):  # workers="auto" against every fixed plan it considers, on this tree
        for batch in (32, 128):
            base = {"kind": "fit", "rows": rows, "features": features, "batch": batch, "epochs": epochs}
            auto = _child(HERE, {**base, "options": {"workers": "auto"}})
            fixed = [_child(HERE, {**base, "options": options}) for options in AUTO_CANDIDATES]
            results.setdefault(f"this tree: auto / best fixed plan, batch {batch}", []).append(auto / max(fixed))
    width = max(map(len, results))
    print(f"{'configuration':<{width}}  {'ratio (median)':>14}  rounds")
    for label, ratios in results.items():
        print(f"{label:<{width}}  {statistics.median(ratios):>14.3f}  {', '.join(f'{r:.3f}' for r in ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
