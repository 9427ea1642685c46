"""Subcommands of the ``loomnet`` command (registered in :mod:`loomnet.cli`), and what they share."""

from __future__ import annotations

import argparse
from typing import Any

from ...io.modelfile import LoomFile
from ...io.tables import DataError, Frame, TableEncoder, default_target


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def encoder_for(loom: LoomFile, frame: Frame, target: str | None = None, *, need_target: bool = True) -> TableEncoder:
    """The column encoding a model was trained with (from its file), checked against ``frame``.

    Models saved from Python without the CLI's encoding take every numeric column but the target
    (for prediction, every column when there are exactly as many as the model has inputs).
    """
    stored = loom.extra.get("input")
    if stored:
        encoder = TableEncoder.from_dict(stored)
        if target is not None:
            encoder.target = target
        return encoder
    n_features = loom.model.n_features
    target = target or default_target(frame)
    if not need_target and len(frame.columns) == n_features:
        target = None
    encoder = TableEncoder(target, "none")  # a model saved from Python knows no fills: missing values are refused
    columns = [c for c in frame.columns if c != target]
    if len(columns) != n_features:
        raise DataError(f"{frame.source} has {len(columns)} feature columns, but the model was trained on {n_features}")
    encoder.columns = [{"name": c, "kind": "numeric", "fill": None} for c in columns]
    task = loom.model.loss.task
    encoder.task = "regress" if task == "regression" else "classify"
    return encoder


def fmt(value: Any) -> str:
    """A metric value for a table: 4 significant decimals for floats."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


class UnknownCategories:
    """Counts rows with a category the model never saw in training, over the chunks of a run, for one note."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def add(self, encoder: TableEncoder) -> None:
        for column, count in encoder.unknown_rows.items():
            self.rows[column] = self.rows.get(column, 0) + count

    def note(self, n_rows: int) -> str | None:
        if not self.rows:
            return None
        parts = ", ".join(f"{column!r} in {count} row(s)" for column, count in self.rows.items())
        return (f"note: categories not seen in training ({parts}) of {n_rows} rows were encoded as unknown")
