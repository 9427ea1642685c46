"""``loomnet explain MODEL DATA``: rank the features a saved model relies on, with a bar chart
(and, for pixel data such as the 8×8 digits, a heat map of a few samples' attributions)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ...explain import METHODS, METRIC_NAMES
from ...io.modelfile import open_model
from ...io.tables import check_writable, read_frame
from ..main import UsageError
from . import encoder_for, positive_int

HELP = "which features a saved model relies on: permutation importance or gradient attributions"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .loom model file")
    p.add_argument("data", help="held-out CSV/.npy/.npz/.parquet file or builtin:NAME (permutation needs the target)")
    p.add_argument("--method", choices=METHODS, default="permutation", help="default: permutation")
    p.add_argument("--top", type=positive_int, default=20, help="features to list and draw (default 20)")
    p.add_argument("--target", help="target column (default: the one the model was trained on)")
    p.add_argument("--metric", choices=METRIC_NAMES, help="permutation: the score whose drop is measured "
                   "(default accuracy for classifiers, r2 for regression)")
    p.add_argument("--repeats", type=positive_int, default=5, help="permutation: shuffles per feature (default 5)")
    p.add_argument("--jobs", type=positive_int, help="permutation: worker threads (default: one per core)")
    p.add_argument("--baseline", default=None, help="integrated gradients / gradient×input reference: 'mean', "
                   "'zero' or a number (default: zero for pixel data, mean otherwise)")
    p.add_argument("--steps", type=positive_int, default=64, help="integrated gradients: path steps (default 64)")
    p.add_argument("--max-samples", type=positive_int, default=2000,
                   help="explain a random subset of at most this many rows (default 2000)")
    p.add_argument("--seed", type=_seed, default=0, help="seed for the subset and the shuffles (>= 0)")
    p.add_argument("--plot", help="bar-chart PNG (default: next to the model, NAME.importance.png)")
    p.add_argument("--heatmap", help="attribution heat-map PNG for pixel data (default NAME.attributions.png)")
    p.add_argument("--image-shape", type=_shape, help="draw heat maps for images of ROWSxCOLS pixels "
                   "(default: detected from pixel_R_C feature names)")
    p.add_argument("--no-plot", action="store_true", help="draw no PNGs")


def run(args: argparse.Namespace, out: Any) -> int:
    from ...explain import explain, integrated_gradients

    loom = open_model(args.model)
    model = loom.model
    stem = Path(args.model)
    plot_path = None if args.no_plot else Path(args.plot or stem.with_name(stem.stem + ".importance.png"))
    if plot_path is not None:
        check_writable(plot_path, "the importance chart")
    frame = read_frame(args.data)
    encoder = encoder_for(loom, frame, args.target)
    X = encoder.transform(frame)
    names = encoder.feature_names if len(encoder.feature_names) == X.shape[1] else None
    if names and not model.feature_names:
        model.feature_names = names
    y = None
    if args.method == "permutation":
        if encoder.target is None or encoder.target not in frame.values:
            raise UsageError(f"permutation importance needs the target column in {args.data}; "
                             "give --target, or use --method integrated-gradients or saliency")
        y = encoder.target_values(frame)
    rows = _subset(X.shape[0], args.max_samples, args.seed)
    X = X[rows]
    y = None if y is None else np.asarray(y)[rows]
    shape = args.image_shape or _detected_shape(model.feature_names or [])
    if shape is not None and shape[0] * shape[1] != X.shape[1]:
        raise UsageError(f"--image-shape {shape[0]}x{shape[1]} has {shape[0] * shape[1]} pixels, "
                         f"but the model has {X.shape[1]} features")
    baseline = _baseline(args.baseline, shape)
    options: dict[str, Any]
    if args.method == "permutation":
        options = {"metric": args.metric, "n_repeats": args.repeats, "n_jobs": args.jobs, "seed": args.seed}
    else:
        if args.metric:
            raise UsageError("--metric applies to --method permutation only")
        options = {"baseline": baseline} if args.method != "saliency" else {}
        if args.method == "integrated-gradients":
            options["n_steps"] = args.steps
    out.progress(f"explaining {args.model} on {args.data}: {X.shape[0]} rows, {X.shape[1]} features, "
                 f"method {args.method}")
    # a table model is explained by its original columns: one-hot parts and missing indicators move as one
    groups = [(name, cols) for name, cols, _ in encoder.feature_groups] if loom.extra.get("input") else None
    if groups is not None and all(len(cols) == 1 for _, cols in groups):
        groups = None
    importance = explain(model, X, y, method=args.method, groups=groups, **options)

    result: dict[str, Any] = {"model": args.model, "data": args.data, "n_samples": int(X.shape[0]),
                              **importance.to_dict(args.top)}
    heading = (f"permutation importance: drop in {importance.metric} (baseline {importance.baseline_score:.4f}, "
               f"{args.repeats} shuffles per feature)" if args.method == "permutation"
               else f"{args.method}: mean |attribution| over {X.shape[0]} samples")
    lines = [heading, importance.table(args.top)]
    if importance.completeness_gap is not None:
        lines.append(f"completeness: attributions sum to f(x) - f(baseline) within "
                     f"{importance.completeness_gap.max():.2%} (worst sample)")
    if plot_path is not None:
        from ..explain_plots import plot_attribution_images, plot_importance

        plot_importance(importance, plot_path, top=args.top, title=f"{stem.name} on {args.data}: {args.method}")
        result["plot"] = str(plot_path)
        lines.append(f"plot: {plot_path}")
        if shape is not None:
            heat_path = Path(args.heatmap or stem.with_name(stem.stem + ".attributions.png"))
            check_writable(heat_path, "the attribution heat map")
            shown = X[:6]
            if args.method == "permutation":  # no per-sample values: integrated gradients for the heat map
                per_sample, method = integrated_gradients(model, shown, baseline=baseline)[0], "integrated-gradients"
            else:
                per_sample, method = importance.values[:6], args.method
            labels = [f"predicted {p}" for p in model.predict(shown)]
            plot_attribution_images(shown, per_sample, heat_path, shape=shape, labels=labels,
                                    title=f"{method} attributions of the predicted output")
            result["heatmap"] = str(heat_path)
            lines.append(f"heat map: {heat_path}")
    out.result(result, "\n".join(lines))
    return 0


def _subset(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _detected_shape(names: list[str]) -> tuple[int, int] | None:
    from ..explain_plots import image_shape

    return image_shape(names)


def _baseline(text: str | None, shape: tuple[int, int] | None) -> str | float:
    if text is None:
        return "zero" if shape is not None else "mean"
    if text in ("mean", "zero"):
        return text
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"--baseline must be 'mean', 'zero' or a number, got {text!r}") from None


def _shape(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS such as 8x8, got {text!r}") from None
    if rows < 1 or cols < 1:
        raise argparse.ArgumentTypeError(f"expected positive ROWSxCOLS, got {text!r}")
    return rows, cols


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value
