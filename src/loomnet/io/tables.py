"""Training tables: fit a :class:`TableEncoder` and encode a file in two passes over its chunks.

Pass 1 types every column (numeric unless a present value is not a number), counts categories
and missing values and reads the target; pass 2 encodes into one preallocated matrix, then the
numeric fills (medians) are taken from the encoded columns. Peak memory stays near the size of X
instead of the file's text, and the result equals ``fit`` + ``transform`` on the whole file.
Rows whose target is missing cannot teach anything: they are left out, and counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .encoder import IMPUTE_CHOICES, MAX_COUNTED, TableEncoder
from .frames import (
    BUILTIN_PREFIX,
    DataError,
    Frame,
    check_writable,
    default_target,
    iter_frames,
    missing_mask,
    parse_numbers,
    read_frame,
    resolve_target,
    text_values,
)

__all__ = ["IMPUTE_CHOICES", "DataError", "EncodedTable", "Frame", "TableEncoder", "TrainingTable", "check_writable",
           "default_target", "iter_frames", "open_training_table", "read_frame", "read_training_table",
           "resolve_target"]


class TrainingTable:
    """What reading a training table found besides X and y: rows left out for a missing target."""

    def __init__(self, dropped_rows: int, n_rows: int):
        self.dropped_rows, self.n_rows = dropped_rows, n_rows


def read_training_table(spec: str, target: str | None = None, impute: str | None = "median", task: str | None = None,
                        chunk_rows: int = 65536) -> tuple[TableEncoder, NDArray[np.float64], NDArray, TrainingTable]:
    """Fit a :class:`TableEncoder` on a training table and encode it, in two passes over its chunks.

    Parameters
    ----------
    spec : str
        The table, as for :func:`read_frame`.
    target : str or None
        The target column (a column index for arrays without names); default: a column named
        ``target``, ``label``, ``y`` or ``class``, else the last one.
    impute : {'median', 'mean', 'none'} or None
        How missing numbers are filled (see :class:`TableEncoder`).
    task : {'classify', 'regress'} or None
        What the target is; default: inferred from its values.
    chunk_rows : int
        Rows per chunk read.

    Returns
    -------
    encoder : TableEncoder
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
    found : TrainingTable
        Rows left out for a missing target (``dropped_rows``) and rows read (``n_rows``).

    Raises
    ------
    DataError
        For a table that cannot be used as given (the message names the row and column).

    Examples
    --------
    >>> from loomnet.io import read_training_table
    >>> encoder, X, y, found = read_training_table("builtin:iris")
    >>> X.shape, encoder.task, found.dropped_rows
    ((150, 4), 'classify', 0)
    """
    scan = _scan_table(spec, target, impute, task, chunk_rows)
    X = np.empty((scan.n_rows, scan.width))
    row = 0
    for frame in scan.frames():
        X[row:row + frame.n_rows] = scan.encoder.transform(frame, keep_missing=True)
        row += frame.n_rows
    for col, offset in scan.numeric:
        _fill(scan.encoder, col, X[:, offset])
    keep = scan.keep
    return scan.encoder, X if keep is None else X[keep], scan.y, TrainingTable(scan.dropped, scan.n_rows)


def open_training_table(spec: str, target: str | None = None, impute: str | None = "median", task: str | None = None,
                        chunk_rows: int = 65536) -> tuple[TableEncoder, EncodedTable, NDArray]:
    """Like :func:`read_training_table`, but X stays on disk: (encoder, lazily encoded X, y).

    Why: an MPI rank needs only its shard of the rows; it reads the file as a stream and keeps
    the encoded rows it asks for, never the whole matrix. The fills are computed from the numeric
    columns (one pass, those columns only), so the rows equal the eager result.
    """
    scan = _scan_table(spec, target, impute, task, chunk_rows)
    if scan.numeric:
        columns = np.empty((scan.n_rows, len(scan.numeric)))
        row = 0
        for frame in scan.frames():
            block = scan.encoder.transform(frame, keep_missing=True)
            columns[row:row + frame.n_rows] = block[:, [offset for _, offset in scan.numeric]]
            row += frame.n_rows
        for j, (col, _) in enumerate(scan.numeric):
            _fill(scan.encoder, col, columns[:, j])
    return scan.encoder, EncodedTable(scan.frames, scan.encoder, scan.n_rows, scan.width, scan.keep), scan.y


def _fill(encoder: TableEncoder, col: dict[str, Any], column: NDArray[np.float64]) -> None:
    """Set a numeric column's fill from its present values and fill its gaps in place."""
    gaps = np.isnan(column)
    col["fill"] = encoder.fill_value(column[~gaps])
    column[gaps] = col["fill"]


class EncodedTable:
    """Encoded training rows read from the source on demand: ``table[rows]`` streams the chunks once
    and encodes only those holding requested rows. Shaped like a float64 matrix (``shape``, ``len``)."""

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, frames: Any, encoder: TableEncoder, n_rows: int, width: int,
                 keep: NDArray[np.int64] | None = None):
        self._frames, self._encoder, self._keep = frames, encoder, keep
        self.shape = (n_rows if keep is None else len(keep), width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | NDArray[np.integer]) -> NDArray[np.float64]:
        idx = np.arange(*rows.indices(len(self))) if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(self))):
            raise IndexError(f"row indices must be 1-D and within [0, {len(self)})")
        if self._keep is not None:
            idx = self._keep[idx]
        order = np.argsort(idx, kind="stable")
        wanted = idx[order]
        out = np.empty((len(idx), self.shape[1]))
        start = 0
        for frame in self._frames():
            if start > (wanted[-1] if wanted.size else -1):
                break
            stop = start + frame.n_rows
            lo, hi = np.searchsorted(wanted, [start, stop])
            if hi > lo:
                out[order[lo:hi]] = self._encoder.transform(frame)[wanted[lo:hi] - start]
            start = stop
        return out

    def update_digest(self, digest: Any) -> None:
        """Feed the encoded matrix to a hashlib digest chunk by chunk: the same bytes as ``X.tobytes()``."""
        start = 0
        for frame in self._frames():
            block = self._encoder.transform(frame)
            if self._keep is not None:
                lo, hi = np.searchsorted(self._keep, [start, start + frame.n_rows])
                block = block[self._keep[lo:hi] - start]
            digest.update(np.ascontiguousarray(block).tobytes())
            start += frame.n_rows


class _Scan:
    """Pass 1: column kinds, category and missing counts, the target; then the fitted encoder."""

    def __init__(self, frame: Frame, target: str | None, impute: str | None):
        if target is None:
            raise DataError(f"a target column is required for {frame.source} (target=NAME); its columns are: "
                            f"{', '.join(frame.columns)}", options=("target",))
        self.encoder = TableEncoder(target, impute)
        self.encoder.fit_columns_check(frame)
        self.source = frame.source
        self.columns = {name: {"numeric": True, "counts": {}, "missing": 0, "first_missing": None}
                        for name in frame.columns if name != target}
        self.targets: list[Frame] = []
        self.n_rows = 0

    def add(self, frame: Frame) -> None:
        for name, state in self.columns.items():
            values = frame.values[name]
            if state["numeric"]:
                numbers, missing = parse_numbers(values)
                state["numeric"] = numbers is not None
            else:
                missing = missing_mask(values)
            state["missing"] += int(missing.sum())
            if state["first_missing"] is None and missing.any():
                state["first_missing"] = f"{frame.source}, {frame.where(int(np.argmax(missing)))}"
            if state["counts"] is not None:
                texts, counts = np.unique(text_values(values[~missing]), return_counts=True)
                for text, count in zip(texts.tolist(), counts.tolist(), strict=True):
                    state["counts"][text] = state["counts"].get(text, 0) + count
                if len(state["counts"]) > MAX_COUNTED:
                    state["counts"] = None  # free text or an identifier: stop counting
        target = self.encoder.target
        column = frame.values[target].copy()  # a copy: a view would keep the whole chunk's table alive
        self.targets.append(Frame(frame.source, [target], {target: column}, frame.row_start,
                                  frame.kind, {**frame.meta, "unnamed": False}, frame.lines))
        self.n_rows += frame.n_rows

    def finish(self) -> tuple[TableEncoder, Frame]:
        encoder = self.encoder
        for name, state in self.columns.items():
            if state["missing"] == self.n_rows:
                raise DataError(f"{self.source}: column {name!r} has no values")
        for name, state in self.columns.items():
            if state["numeric"]:
                encoder.columns.append(encoder.numeric_column(name, None, state["missing"], state["first_missing"]))
            else:
                encoder.columns.append(encoder.categorical_column(name, state["counts"], state["missing"],
                                                                  self.n_rows, state["first_missing"]))
        first, target = self.targets[0], encoder.target
        lines = None if first.lines is None else np.concatenate([f.lines for f in self.targets])
        values = {target: np.concatenate([f.values[target] for f in self.targets])}
        return encoder, Frame(first.source, [target], values, 0, first.kind, first.meta, lines)


class _ScanResult:
    def __init__(self, frames: Any, encoder: TableEncoder, y: NDArray, n_rows: int,
                 keep: NDArray[np.int64] | None):
        self.frames, self.encoder, self.n_rows, self.keep, self.y = frames, encoder, n_rows, keep, y
        self.dropped = 0 if keep is None else n_rows - len(keep)
        widths = [len(group[1]) for group in encoder.feature_groups]
        named = [c for c in encoder.columns if c["kind"] != "dropped"]
        offsets = np.cumsum([0] + widths)
        self.width = int(offsets[-1])
        self.numeric = [(col, int(offset)) for col, offset in zip(named, offsets, strict=False)
                        if col["kind"] == "numeric"]


def _scan_table(spec: str, target: str | None, impute: str | None, task: str | None, chunk_rows: int) -> _ScanResult:
    """Pass 1 over the chunks, and a function that replays them."""
    frames = _replayable(spec, chunk_rows)
    scan: _Scan | None = None
    first_chunks: list[Frame] | None = []  # kept while there is only one: a small file is parsed once
    for frame in frames():
        scan = scan or _Scan(frame, resolve_target(frame, target), impute)
        scan.add(frame)
        if first_chunks is not None:
            first_chunks = first_chunks + [frame] if not first_chunks else None
    if first_chunks:
        frames = lambda: iter(first_chunks)  # noqa: E731
    encoder, target_frame = scan.finish()
    present = ~missing_mask(target_frame.values[encoder.target])
    if not present.any():
        raise DataError(f"{scan.source}: the target column {encoder.target!r} has no values")
    keep = None if present.all() else np.flatnonzero(present)
    if keep is not None:
        name = encoder.target
        target_frame = Frame(target_frame.source, [name], {name: target_frame.values[name][keep]}, 0,
                             target_frame.kind, target_frame.meta,
                             None if target_frame.lines is None else target_frame.lines[keep])
    y = encoder.fit_target(target_frame, task)
    return _ScanResult(frames, encoder, y, scan.n_rows, keep)


def _replayable(spec: str, chunk_rows: int) -> Any:
    """A function giving the chunks again and again: re-read from disk, or kept when already in memory."""
    if spec.startswith(BUILTIN_PREFIX) or spec.lower().endswith(".npz"):
        frames = list(iter_frames(spec, None))
        return lambda: iter(frames)
    return lambda: iter_frames(spec, chunk_rows)
