"""``loomnet evaluate MODEL DATA``: the model's loss and metrics on labelled data, and a confusion-matrix PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..data_io import check_writable, read_frame
from ..modelfile import open_model
from . import encoder_for, fmt

HELP = "metrics of a saved model on labelled data"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .loom model file")
    p.add_argument("data", help="CSV/.npy/.npz/.parquet file or builtin:NAME, with the target column")
    p.add_argument("--target", help="target column (default: the one the model was trained on)")
    p.add_argument("--confusion", help="confusion-matrix PNG (default: next to the model, NAME.confusion.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the confusion matrix")


def run(args: argparse.Namespace, out: Any) -> int:
    from ..metrics import confusion_matrix

    loom = open_model(args.model)
    model = loom.model
    classify = model.classes_ is not None
    plot_path = None
    if classify and not args.no_plot:
        plot_path = Path(args.confusion or Path(args.model).with_name(Path(args.model).stem + ".confusion.png"))
        check_writable(plot_path, "the confusion matrix")
    frame = read_frame(args.data)
    encoder = encoder_for(loom, frame, args.target)
    X = encoder.transform(frame)
    y = encoder.target_values(frame)
    metrics = model.evaluate(X, y)
    result: dict[str, Any] = {"model": args.model, "data": args.data, "n_samples": int(X.shape[0]), "metrics": metrics}
    lines = [f"{'metric':<20}{'value':>10}"] + [f"{name:<20}{fmt(value):>10}" for name, value in metrics.items()]
    lines.append(f"{'samples':<20}{X.shape[0]:>10}")
    if classify:
        labels = model.classes_
        matrix = confusion_matrix(y, model.predict(X), labels=labels)
        result["confusion_matrix"] = {"labels": labels.tolist(), "matrix": matrix.tolist()}
        if plot_path is not None:
            from ..plots import plot_confusion

            plot_confusion(matrix, labels.tolist(), plot_path, title=f"{Path(args.model).name} on {args.data}")
            result["confusion_png"] = str(plot_path)
            lines.append(f"confusion matrix: {plot_path}")
    out.result(result, "\n".join(lines))
    return 0
