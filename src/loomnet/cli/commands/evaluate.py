"""``loomnet evaluate MODEL DATA``: the model's loss and metrics on labelled data, and a confusion-matrix PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ...io.modelfile import open_model
from ...io.tables import check_writable, iter_frames
from . import UnknownCategories, encoder_for, fmt, positive_int

HELP = "metrics of a saved model on labelled data"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .loom model file")
    p.add_argument("data", help="CSV/.npy/.npz/.parquet file or builtin:NAME, with the target column")
    p.add_argument("--target", help="target column (default: the one the model was trained on)")
    p.add_argument("--confusion", help="confusion-matrix PNG (default: next to the model, NAME.confusion.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the confusion matrix")
    p.add_argument("--chunk-rows", type=positive_int, default=65536, help="rows read and evaluated at a time")


def run(args: argparse.Namespace, out: Any) -> int:
    from ...engine.metrics import classification_report, confusion_matrix, regression_report

    loom = open_model(args.model)
    model = loom.model
    classify = model.classes_ is not None
    plot_path = None
    if classify and not args.no_plot:
        plot_path = Path(args.confusion or Path(args.model).with_name(Path(args.model).stem + ".confusion.png"))
        check_writable(plot_path, "the confusion matrix")
    n_rows, y, predictions, loss_sum = _predict_chunks(loom, args, out)
    report = classification_report if classify else regression_report
    metrics = {"loss": loss_sum / n_rows, **report(y, predictions)}
    result: dict[str, Any] = {"model": args.model, "data": args.data, "n_samples": n_rows, "metrics": metrics}
    lines = [f"{'metric':<20}{'value':>10}"] + [f"{name:<20}{fmt(value):>10}" for name, value in metrics.items()]
    lines.append(f"{'samples':<20}{n_rows:>10}")
    if not classify and model.target_preprocess is not None:
        lines.append("loss is on the standardised target; the other metrics are in target units")
        result["loss_units"] = "standardised target"
    if classify:
        labels = model.classes_
        matrix = confusion_matrix(y, predictions, labels=labels)
        result["confusion_matrix"] = {"labels": labels.tolist(), "matrix": matrix.tolist()}
        if plot_path is not None:
            from ..plots import plot_confusion

            plot_confusion(matrix, labels.tolist(), plot_path, title=f"{Path(args.model).name} on {args.data}")
            result["confusion_png"] = str(plot_path)
            lines.append(f"confusion matrix: {plot_path}")
    out.result(result, "\n".join(lines))
    return 0


def _predict_chunks(loom: Any, args: argparse.Namespace, out: Any) -> tuple[int, np.ndarray, np.ndarray, float]:
    """Read the data in chunks: (rows, true targets, predictions, summed loss); memory grows only by targets."""
    model, encoder = loom.model, None
    n_rows, loss_sum, targets, predictions = 0, 0.0, [], []
    unknown = UnknownCategories()
    for frame in iter_frames(args.data, args.chunk_rows):
        encoder = encoder or encoder_for(loom, frame, args.target, need_target=True)
        X, y = encoder.transform(frame), encoder.target_values(frame)
        unknown.add(encoder)
        loss_sum += model.evaluate(X, y)["loss"] * len(X)
        targets.append(y)
        predictions.append(model.predict(X))
        n_rows += len(X)
    note = unknown.note(n_rows)
    if note:
        out.progress(note)
    return n_rows, np.concatenate(targets), np.concatenate(predictions), loss_sum
