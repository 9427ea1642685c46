"""``loomnet predict MODEL DATA``: predictions for every row, read and written in chunks.

The output is written to a temporary file next to ``-o`` and renamed at the end, so a crash
never leaves a half-written prediction file behind.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ...io.atomic import is_special_file
from ...io.frames import DataError, check_writable, iter_frames, text_values
from ...io.modelfile import open_model
from ..main import UsageError
from . import UnknownCategories, encoder_for, positive_int

HELP = "predictions of a saved model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .loom model file")
    p.add_argument("data", help="CSV/.npy/.npz/.parquet file or builtin:NAME (a target column is ignored)")
    p.add_argument("--proba", action="store_true", help="also write class probabilities (classifiers)")
    p.add_argument("-o", "--output", help="CSV file to write (default: stdout)")
    p.add_argument("--id", metavar="COLUMN", help="copy this column of the data into the output, before the "
                   "predictions")
    p.add_argument("--chunk-rows", type=positive_int, default=65536, help="rows read and predicted at a time")


def run(args: argparse.Namespace, out: Any) -> int:
    loom = open_model(args.model)
    model = loom.model
    if args.proba and model.classes_ is None:
        raise UsageError("--proba needs a classification model; this one does regression")
    if args.output:
        check_writable(args.output, "predictions to")
    encoder = None
    n_rows = 0
    unknown = UnknownCategories()
    with _output(args.output) as stream:
        writer = None if (out.json and not args.output) else csv.writer(stream, lineterminator="\n")
        for frame in iter_frames(args.data, args.chunk_rows):
            if args.id is not None and args.id not in frame.values:
                raise DataError(f"{frame.source} has no column {args.id!r} for --id; columns are: "
                                f"{', '.join(frame.columns)}")
            encoder = encoder or encoder_for(loom, frame, need_target=False)
            X = encoder.transform(frame)
            unknown.add(encoder)
            predictions = model.predict(X)
            proba = model.predict_proba(X) if args.proba else None
            ids = None if args.id is None else text_values(frame.values[args.id]).tolist()
            if writer is not None and n_rows == 0:  # the header once the first chunk is known to fit
                header = ([args.id] if ids is not None else []) + ["prediction"]
                if args.proba:
                    header += [f"proba_{label}" for label in model.classes_.tolist()]
                writer.writerow(header)
            _write(stream, writer, predictions, proba, model.classes_, ids, args.id)
            n_rows += len(predictions)
    note = unknown.note(n_rows)
    if note:
        out.progress(note)
    if args.output:
        out.result({"model": args.model, "data": args.data, "rows": n_rows, "output": args.output},
                   f"{n_rows} predictions written to {args.output}")
    return 0


def _write(stream: TextIO, writer: Any, predictions: np.ndarray, proba: np.ndarray | None, classes: Any,
           ids: list[str] | None, id_name: str | None) -> None:
    # float32 values as their shortest decimal form (222.38925, not 222.38925170898438)
    short = predictions.dtype == np.float32 and predictions.ndim == 1
    values = [float(str(v)) for v in predictions] if short else predictions.tolist()
    if writer is None:  # --json to stdout: one JSON object per line
        for i, value in enumerate(values):
            row: dict[str, Any] = {} if ids is None else {id_name: ids[i]}
            row["prediction"] = value
            if proba is not None:
                row["proba"] = dict(zip(map(str, classes.tolist()), proba[i].tolist(), strict=True))
            stream.write(json.dumps(row) + "\n")
        return
    first = [[]] * len(values) if ids is None else [[i] for i in ids]
    if proba is None:
        writer.writerows([*lead, v] for lead, v in zip(first, values, strict=True))
    else:
        writer.writerows([*lead, v, *(f"{p:.6g}" for p in row)]
                         for lead, v, row in zip(first, values, proba.tolist(), strict=True))


class _output:
    """stdout, or a temporary file beside ``path`` renamed onto it when everything was written."""

    def __init__(self, path: str | None):
        self.path = path
        self.tmp: str | None = None

    def __enter__(self) -> TextIO:
        if self.path is None:
            return sys.stdout
        if is_special_file(self.path):  # /dev/stdout, /dev/null, a FIFO: stream into it, never rename over it
            self.stream = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
            return self.stream
        directory = Path(self.path).parent
        fd, self.tmp = tempfile.mkstemp(prefix=f".{Path(self.path).name}.", suffix=".tmp", dir=directory)
        self.stream = os.fdopen(fd, "w", newline="", encoding="utf-8")
        return self.stream

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if self.path is None:
            sys.stdout.flush()
            return
        self.stream.close()
        if self.tmp is None:
            return
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)
