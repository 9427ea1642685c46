"""Reading tabular data (CSV, .npy/.npz, Parquet, built-in sets) and encoding it for a network.

A :class:`Frame` is named columns of one block of rows; readers return the whole file or an
iterator of chunks (so ``predict`` works on files larger than memory). A :class:`TableEncoder`
is fitted on training data: numeric columns pass through, text columns are one-hot encoded,
missing values are an error naming row and column unless imputed; its ``to_dict`` goes into
the model file so prediction encodes new data exactly the same way. :func:`read_training_table`
fits and encodes in two passes over chunks, so training never holds the file's text at once.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import datasets

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
BUILTIN_PREFIX = "builtin:"
IMPUTE_CHOICES = ("mean", "median")
MAX_CATEGORIES = 1000  # more distinct texts than this: an identifier or free text, not a category


class DataError(ValueError):
    """The data cannot be used as given; the message names the file, row and column."""


@dataclass
class Frame:
    """Named 1-D columns for a block of rows; ``row_start`` is the block's first row in the source."""

    source: str
    columns: list[str]
    values: dict[str, NDArray]
    row_start: int = 0
    kind: str = "array"
    meta: dict[str, Any] = field(default_factory=dict)
    lines: NDArray[np.int64] | None = None  # CSV: the file line each row ends on

    @property
    def n_rows(self) -> int:
        return len(self.values[self.columns[0]]) if self.columns else 0

    def where(self, i: int) -> str:
        """Human position of row ``i`` of this block: 'row 7 (line 8)' for CSV, 'row 7' otherwise."""
        row = self.row_start + int(i) + 1
        return f"row {row} (line {self.lines[i]})" if self.lines is not None else f"row {row}"


# ----------------------------------------------------------------- readers
def read_frame(spec: str) -> Frame:
    """Read a whole data source: ``builtin:NAME``, a CSV, .npy, .npz or .parquet file."""
    frames = list(iter_frames(spec, chunk_rows=None))
    if len(frames) == 1:
        return frames[0]
    first = frames[0]
    values = {c: np.concatenate([f.values[c] for f in frames]) for c in first.columns}
    lines = None if first.lines is None else np.concatenate([f.lines for f in frames])
    return Frame(first.source, first.columns, values, 0, first.kind, first.meta, lines)


def iter_frames(spec: str, chunk_rows: int | None = 65536) -> Iterator[Frame]:
    """Blocks of at most ``chunk_rows`` rows (None: one block); CSV and .npy stream from disk."""
    if spec.startswith(BUILTIN_PREFIX):
        yield from _chunks(_read_builtin(spec), chunk_rows)
        return
    path = Path(spec)
    if not path.exists():
        raise DataError(f"data file {spec} does not exist")
    if path.is_dir():
        raise DataError(f"data path {spec} is a directory, not a data file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        yield from _read_npy(path, chunk_rows)
    elif suffix == ".npz":
        yield from _chunks(_read_npz(path), chunk_rows)
    elif suffix in (".parquet", ".pq"):
        yield from _read_parquet(path, chunk_rows)
    else:
        yield from _read_csv(path, chunk_rows)


def _chunks(frame: Frame, chunk_rows: int | None) -> Iterator[Frame]:
    if chunk_rows is None or frame.n_rows <= chunk_rows:
        yield frame
        return
    for start in range(0, frame.n_rows, chunk_rows):
        values = {c: v[start:start + chunk_rows] for c, v in frame.values.items()}
        lines = None if frame.lines is None else frame.lines[start:start + chunk_rows]
        yield Frame(frame.source, frame.columns, values, start, frame.kind, frame.meta, lines)


def _read_builtin(spec: str) -> Frame:
    """``builtin:NAME`` or ``builtin:NAME:key=value,...`` (generator sizes, e.g. n_samples=5000)."""
    name, _, options = spec[len(BUILTIN_PREFIX):].partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise DataError(f"bad option {item!r} in {spec}; write key=value, "
                            "e.g. builtin:classification:n_samples=500")
        try:
            number = float(value)
        except ValueError:
            raise DataError(f"option {key} in {spec} must be a number, got {value!r}") from None
        kwargs[key.strip()] = int(number) if number.is_integer() and key.strip().startswith("n_") else number
    try:
        data = datasets.load(name, **kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise DataError(message if message.startswith("unknown dataset") else f"{spec}: {message}") from None
    names = data.feature_names or [f"x{i}" for i in range(data.X.shape[1])]
    values = {n: np.ascontiguousarray(data.X[:, i]) for i, n in enumerate(names)}
    values["target"] = data.y
    return Frame(spec, [*names, "target"], values, 0, "builtin", {"task": data.task, "target": "target"})


def _array_frame(source: str, X: NDArray, y: NDArray | None, names: list[str] | None, row_start: int = 0) -> Frame:
    if X.ndim != 2:
        raise DataError(f"{source}: expected a 2-D array (rows × columns), got shape {X.shape}")
    names = names or [f"x{i}" for i in range(X.shape[1])]
    values = {n: X[:, i] for i, n in enumerate(names)}
    meta: dict[str, Any] = {"target": names[-1], "unnamed": names[0] == "x0"}
    if y is not None:
        if y.ndim != 1 or len(y) != len(X):
            raise DataError(f"{source}: y must be 1-D with one entry per row of X, got shape {y.shape}")
        values["y"], names, meta["target"] = y, [*names, "y"], "y"
    return Frame(source, list(names), values, row_start, "array", meta)


def _read_npy(path: Path, chunk_rows: int | None) -> Iterator[Frame]:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected a numeric array, got dtype {array.dtype}")
    step = chunk_rows or max(len(array), 1)
    for start in range(0, max(len(array), 1), step):
        yield _array_frame(str(path), np.asarray(array[start:start + step], dtype=np.float64), None, None, start)


def _read_npz(path: Path) -> Frame:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None
    if "X" not in arrays:
        raise DataError(f"{path}: an .npz needs an array named X (and optionally y, feature_names); "
                        f"it has {sorted(arrays)}")
    names = arrays["feature_names"].astype(str).tolist() if "feature_names" in arrays else None
    return _array_frame(str(path), arrays["X"], arrays.get("y"), names)


def _read_parquet(path: Path, chunk_rows: int | None) -> Iterator[Frame]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    start = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows or 1 << 62):
        values = {name: _arrow_column(column) for name, column in zip(batch.schema.names, batch.columns, strict=True)}
        yield Frame(str(path), list(batch.schema.names), values, start, "parquet")
        start += batch.num_rows


def _arrow_column(column: Any) -> NDArray:
    values = column.to_pylist()
    if all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def _read_csv(path: Path, chunk_rows: int | None) -> Iterator[Frame]:
    try:
        fh = open(path, newline="", encoding="utf-8-sig")  # -sig: a byte-order mark is not part of a name
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path} is empty; a CSV needs a header row naming its columns") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path} is not a readable CSV file ({exc})") from None
        header = [h.strip() for h in header]
        _check_header(path, header)
        rows: list[list[str]] = []
        lines: list[int] = []
        start = 0
        try:
            for row in reader:
                if not row or (len(row) == 1 < len(header) and not row[0].strip()):
                    continue  # a blank line
                if len(row) != len(header):
                    raise DataError(f"{path}: line {reader.line_num} has {len(row)} fields, the header has "
                                    f"{len(header)}")
                rows.append(row)
                lines.append(reader.line_num)
                if chunk_rows and len(rows) == chunk_rows:
                    yield _csv_frame(path, header, rows, lines, start)
                    start += len(rows)
                    rows, lines = [], []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path} is not a readable CSV file (near line {reader.line_num}: {exc})") from None
        if rows or start == 0:
            if not rows and start == 0:
                raise DataError(f"{path} has a header but no data rows")
            yield _csv_frame(path, header, rows, lines, start)


def _check_header(path: Path, header: list[str]) -> None:
    if any(not h for h in header):
        raise DataError(f"{path}: the header has an empty column name (column {header.index('') + 1})")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: the header names column {name!r} twice")
        seen.add(name)


def _csv_frame(path: Path, header: list[str], rows: list[list[str]], lines: list[int], start: int) -> Frame:
    table = np.array(rows, dtype=object).reshape(len(rows), len(header))
    values = {name: table[:, i] for i, name in enumerate(header)}  # text as read: _text() strips it when used
    return Frame(str(path), header, values, start, "csv", lines=np.array(lines, dtype=np.int64))


# ----------------------------------------------------------------- typing values
def _missing_mask(values: NDArray) -> NDArray[np.bool_]:
    if values.dtype.kind in "biu":
        return np.zeros(len(values), dtype=bool)
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.isin(np.char.lower(_text(values)), list(MISSING))


def _text(values: NDArray) -> NDArray[np.str_]:
    """Cell values as stripped strings."""
    return np.char.strip(values.astype(str))


def _parse_numbers(values: NDArray) -> tuple[NDArray[np.float64] | None, NDArray[np.bool_]]:
    """(numbers with NaN where missing, the missing mask); numbers is None when a present value is not a number."""
    if values.dtype.kind in "biuf":
        numbers = values.astype(np.float64)
        return numbers, np.isnan(numbers)
    try:
        numbers = values.astype(np.float64)  # the fast path: every cell is a number ('nan' counts as missing)
        return numbers, np.isnan(numbers)
    except (ValueError, TypeError):
        missing = _missing_mask(values)
        return _as_float(values, missing), missing


def _as_float(values: NDArray, missing: NDArray[np.bool_]) -> NDArray[np.float64] | None:
    """Numbers with NaN where missing, or None when some present value is not a number."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    out = np.full(len(values), np.nan)
    try:
        out[~missing] = values[~missing].astype(np.float64)
    except ValueError:
        return None
    return out


def _first_bad_number(values: NDArray, missing: NDArray[np.bool_]) -> int:
    for i in np.flatnonzero(~missing):
        try:
            float(values[i])
        except ValueError:
            return int(i)
    return -1


# ----------------------------------------------------------------- the encoder
class TableEncoder:
    """Column names, kinds and encodings fitted on training data; turns Frames into feature matrices.

    Numeric columns stay as they are; categorical (text) columns become one 0/1 column per
    category seen in training. With ``impute`` ('mean' or 'median'), missing numbers get the
    training mean/median and missing categories the most frequent one; without it a missing
    value is a DataError naming row and column.
    """

    def __init__(self, target: str | None, impute: str | None = None):
        if impute is not None and impute not in IMPUTE_CHOICES:
            raise DataError(f"--impute must be one of {', '.join(IMPUTE_CHOICES)}, got {impute!r}")
        self.target = target
        self.impute = impute
        self.columns: list[dict[str, Any]] = []
        self.task: str | None = None

    @property
    def feature_columns(self) -> list[str]:
        return [c["name"] for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded features: ``col`` for numbers, ``col=category`` for one-hot columns."""
        names: list[str] = []
        for c in self.columns:
            names += [c["name"]] if c["kind"] == "numeric" else [f"{c['name']}={v}" for v in c["categories"]]
        return names

    def fit(self, frame: Frame) -> TableEncoder:
        self.fit_columns_check(frame)
        self.columns = [self._fit_column(frame, name) for name in frame.columns if name != self.target]
        return self

    def fit_columns_check(self, frame: Frame) -> None:
        """Training data must have the target column and at least one other."""
        if self.target is not None and self.target not in frame.values:
            raise DataError(f"{frame.source} has no column {self.target!r}; columns are: {', '.join(frame.columns)}")
        if not [c for c in frame.columns if c != self.target]:
            raise DataError(f"{frame.source} has no feature columns besides the target {self.target!r}")

    def _fit_column(self, frame: Frame, name: str) -> dict[str, Any]:
        values = frame.values[name]
        numbers, missing = _parse_numbers(values)
        present = ~missing
        if not present.any():
            raise DataError(f"{frame.source}: column {name!r} has no values")
        if numbers is not None:
            fill = None
            if self.impute is not None and missing.any():
                fill = float(np.mean(numbers[present]) if self.impute == "mean" else np.median(numbers[present]))
            return {"name": name, "kind": "numeric", "fill": fill}
        cats, counts = np.unique(_text(values[present]), return_counts=True)
        if len(cats) > MAX_CATEGORIES:
            raise DataError(_too_many_categories(frame.source, name))
        fill = str(cats[counts.argmax()]) if self.impute is not None else None
        return {"name": name, "kind": "categorical", "categories": cats.tolist(), "fill": fill}

    def align(self, frame: Frame) -> Frame:
        """Give an array without column names (.npy, .npz) the training columns, by position."""
        if not frame.meta.get("unnamed") or frame.columns[: len(self.columns)] == self.feature_columns:
            return frame
        names = self.feature_columns
        if len(frame.columns) == len(names) + 1 and self.target:
            names = [*names, self.target]
        elif len(frame.columns) != len(names):
            raise DataError(f"{frame.source} has {len(frame.columns)} columns without names, but the model was "
                            f"trained on {len(names)} feature columns ({', '.join(names[:8])}"
                            f"{', ...' if len(names) > 8 else ''})")
        values = {new: frame.values[old] for old, new in zip(frame.columns, names, strict=True)}
        return Frame(frame.source, names, values, frame.row_start, frame.kind, {**frame.meta, "unnamed": False},
                     frame.lines)

    def check_columns(self, frame: Frame) -> None:
        """Refuse data whose columns differ from training, naming what is missing or extra."""
        expected = self.feature_columns
        got = [c for c in frame.columns if c != self.target]
        lacking = [c for c in expected if c not in frame.values]
        extra = [c for c in got if c not in expected]
        if lacking or extra:
            parts = []
            if lacking:
                parts.append(f"lacks column(s) {_names(lacking)} the model was trained on")
            if extra:
                parts.append(f"has column(s) {_names(extra)} the model does not know")
            raise DataError(f"{frame.source} " + " and ".join(parts))

    def transform(self, frame: Frame, *, keep_missing: bool = False) -> NDArray[np.float64]:
        """The feature matrix for a Frame: numbers as they are, categories one-hot.

        ``keep_missing`` leaves NaN for missing numbers whose fill is not known yet (streamed training).
        """
        frame = self.align(frame)
        self.check_columns(frame)
        blocks = []
        for col in self.columns:
            values = frame.values[col["name"]]
            numbers, missing = _parse_numbers(values) if col["kind"] == "numeric" else (None, _missing_mask(values))
            placeholder = keep_missing and col["kind"] == "numeric"
            if missing.any() and col["fill"] is None and not placeholder:
                i = int(np.argmax(missing))
                hint = "" if self.impute else " (use --impute mean|median to fill missing values)"
                raise DataError(f"{frame.source}: missing value in column {col['name']!r} at {frame.where(i)}{hint}")
            if col["kind"] == "numeric":
                blocks.append(self._numeric(frame, col, values, numbers, missing)[:, None])
            else:
                blocks.append(self._one_hot(frame, col, values, missing))
        return np.hstack(blocks) if blocks else np.empty((frame.n_rows, 0))

    def _numeric(self, frame: Frame, col: dict[str, Any], values: NDArray, numbers: NDArray | None,
                 missing: NDArray) -> NDArray:
        if numbers is None:
            i = _first_bad_number(values, missing)
            raise DataError(f"{frame.source}: column {col['name']!r} is numeric but {frame.where(i)} holds "
                            f"{values[i]!r}")
        if missing.any() and col["fill"] is not None:
            numbers[missing] = col["fill"]
        if not (np.isfinite(numbers) | missing).all():
            i = int(np.argmax(~(np.isfinite(numbers) | missing)))
            raise DataError(f"{frame.source}: column {col['name']!r} has the non-finite value {numbers[i]} "
                            f"at {frame.where(i)}")
        return numbers

    def _one_hot(self, frame: Frame, col: dict[str, Any], values: NDArray, missing: NDArray) -> NDArray:
        text = _text(values).astype(object)
        if missing.any():
            text[missing] = col["fill"]
        categories = col["categories"]
        index = {c: i for i, c in enumerate(categories)}
        codes = np.fromiter((index.get(v, -1) for v in text), dtype=np.int64, count=len(text))
        if (codes < 0).any():
            i = int(np.argmax(codes < 0))
            raise DataError(f"{frame.source}: column {col['name']!r} has the category {text[i]!r} at "
                            f"{frame.where(i)}, not seen in training (known: {categories[:10]})")
        out = np.zeros((len(text), len(categories)))
        out[np.arange(len(text)), codes] = 1.0
        return out

    # ----------------------------------------------------------------- the target
    def fit_target(self, frame: Frame, task: str | None) -> NDArray:
        """Targets for training; chooses the task ('classify' or 'regress') when ``task`` is None."""
        y = self.target_values(frame, task)
        if task is None:
            builtin = frame.meta.get("task")
            if builtin:
                task = "regress" if builtin == "regression" else "classify"
            elif y.dtype.kind in "OUS":
                task = "classify"
            else:
                integral = np.all(np.mod(y, 1) == 0)
                task = "classify" if integral and len(np.unique(y)) <= 20 else "regress"
        self.task = task
        return y

    def target_values(self, frame: Frame, task: str | None = None) -> NDArray:
        """The target column: numbers when every value is one (integers as int64), else text."""
        if self.columns:
            frame = self.align(frame)
        if self.target not in frame.values:
            raise DataError(f"{frame.source} has no target column {self.target!r}; "
                            f"columns are: {', '.join(frame.columns)}")
        values = frame.values[self.target]
        numbers, missing = _parse_numbers(values)
        if missing.any():
            raise DataError(f"{frame.source}: missing target value in column {self.target!r} at "
                            f"{frame.where(int(np.argmax(missing)))} (targets are never imputed)")
        task = task or self.task
        if numbers is None:
            if task == "regress":
                i = _first_bad_number(values, missing)
                raise DataError(f"{frame.source}: the target column {self.target!r} is not numeric ({frame.where(i)} "
                                f"holds {values[i]!r}); regression needs numbers, use --task classify")
            return _text(values)
        if not np.isfinite(numbers).all():
            i = int(np.argmax(~np.isfinite(numbers)))
            raise DataError(f"{frame.source}: the target column {self.target!r} has the non-finite value "
                            f"{numbers[i]} at {frame.where(i)}")
        if task != "regress" and np.all(np.mod(numbers, 1) == 0) and np.all(np.abs(numbers) <= 2**53):
            return numbers.astype(np.int64)  # beyond 2**53 the cast would merge distinct labels
        return numbers

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "impute": self.impute, "task": self.task, "columns": self.columns}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableEncoder:
        """Rebuild from ``to_dict()``; a stored encoding of the wrong shape is a DataError (files are untrusted)."""
        if not isinstance(d, dict) or not isinstance(d.get("columns"), list):
            raise DataError("the stored column encoding is malformed (no list of columns)")
        target, task = d.get("target"), d.get("task")
        if not (target is None or isinstance(target, str)) or task not in (None, "classify", "regress"):
            raise DataError(f"the stored column encoding is malformed (target {target!r}, task {task!r})")
        for col in d["columns"]:
            if not _valid_column(col):
                raise DataError(f"the stored column encoding is malformed (column {str(col)[:60]})")
        enc = cls(target, d.get("impute"))
        enc.columns, enc.task = list(d["columns"]), task
        return enc


def _valid_column(col: Any) -> bool:
    """A stored column: a name, numeric with a numeric fill, or categorical with string categories and fill."""
    if not isinstance(col, dict) or not isinstance(col.get("name"), str):
        return False
    fill = col.get("fill")
    if col.get("kind") == "numeric":
        return fill is None or (isinstance(fill, int | float) and not isinstance(fill, bool))
    categories = col.get("categories")
    return (col.get("kind") == "categorical" and isinstance(categories, list) and len(categories) > 0
            and all(isinstance(c, str) for c in categories) and (fill is None or isinstance(fill, str)))


def _names(columns: list[str], limit: int = 6) -> str:
    """A column list for a message: the first few, then how many more."""
    shown = repr(columns[:limit])
    return shown if len(columns) <= limit else f"{shown[:-1]}, ... ({len(columns) - limit} more)]"


def default_target(frame: Frame) -> str | None:
    """The target column when none is named: builtin/npz/npy data know theirs, CSV does not."""
    return frame.meta.get("target")


def check_writable(path: str | os.PathLike, what: str = "output") -> None:
    """Raise DataError unless a file can be created at ``path`` (checked before long work starts)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DataError(f"cannot write {what} {path}: it is a directory")
    if not directory.is_dir():
        raise DataError(f"cannot write {what} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DataError(f"cannot write {what} {path}: permission denied")


# ----------------------------------------------------------------- streamed training data
def read_training_table(spec: str, target: str | None = None, impute: str | None = None, task: str | None = None,
                        chunk_rows: int = 65536) -> tuple[TableEncoder, NDArray[np.float64], NDArray, Frame]:
    """Fit a TableEncoder and encode training data in two passes over chunks: (encoder, X, y, target frame).

    Pass 1 types every column (numeric unless a present value is not a number), counts categories
    and finds missing values; pass 2 encodes into one preallocated matrix. Peak memory stays near
    the size of X instead of the file's text, and the result equals ``fit`` + ``transform`` on the
    whole file. ``target`` may be a column index for arrays without column names.
    """
    frames, encoder, y, target_frame, n_rows, width, gap_columns = _scan_table(spec, target, impute, task, chunk_rows)
    X = np.empty((n_rows, width))
    row = 0
    for frame in frames():
        X[row:row + frame.n_rows] = encoder.transform(frame, keep_missing=True)
        row += frame.n_rows
    for col, offset in gap_columns:
        column = X[:, offset]
        gaps = _set_fill(col, column, impute)
        column[gaps] = col["fill"]
    return encoder, X, y, target_frame


def open_training_table(spec: str, target: str | None = None, impute: str | None = None, task: str | None = None,
                        chunk_rows: int = 65536) -> tuple[TableEncoder, EncodedTable, NDArray]:
    """Like :func:`read_training_table`, but X stays on disk: (encoder, lazily encoded X, y).

    Why: an MPI rank needs only its shard of the rows; it reads the file as a stream and keeps
    the encoded rows it asks for, never the whole matrix. Imputation fills are computed from the
    columns that have gaps (one column each in memory), so the rows equal the eager result.
    """
    frames, encoder, y, _, n_rows, width, gap_columns = _scan_table(spec, target, impute, task, chunk_rows)
    if gap_columns:
        columns = np.empty((n_rows, len(gap_columns)))
        row = 0
        for frame in frames():
            block = encoder.transform(frame, keep_missing=True)
            columns[row:row + frame.n_rows] = block[:, [offset for _, offset in gap_columns]]
            row += frame.n_rows
        for j, (col, _) in enumerate(gap_columns):
            _set_fill(col, columns[:, j], impute)
    return encoder, EncodedTable(frames, encoder, n_rows, width), y


def _scan_table(spec: str, target: str | None, impute: str | None, task: str | None, chunk_rows: int) -> tuple:
    """Pass 1 over the chunks: the fitted encoder, targets, row count, encoded width and the numeric
    columns with gaps (with their offsets), plus a function that replays the chunks."""
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
    encoder, target_frame, n_rows = scan.finish()
    y = encoder.fit_target(target_frame, task)
    offsets = np.cumsum([0] + [1 if c["kind"] == "numeric" else len(c["categories"]) for c in encoder.columns])
    gap_columns = [(col, int(offset)) for col, offset in zip(encoder.columns, offsets, strict=False)
                   if col["kind"] == "numeric" and scan.columns[col["name"]]["missing"] is not None]
    return frames, encoder, y, target_frame, n_rows, int(offsets[-1]), gap_columns


def _set_fill(col: dict[str, Any], column: NDArray[np.float64], impute: str | None) -> NDArray[np.bool_]:
    """Set a numeric column's fill (mean or median of its present values); return where its gaps are."""
    gaps = np.isnan(column)
    col["fill"] = float(np.mean(column[~gaps]) if impute == "mean" else np.median(column[~gaps]))
    return gaps


class EncodedTable:
    """Encoded training rows read from the source on demand: ``table[rows]`` streams the chunks once
    and encodes only those holding requested rows. Shaped like a float64 matrix (``shape``, ``len``)."""

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, frames: Any, encoder: TableEncoder, n_rows: int, width: int):
        self._frames, self._encoder = frames, encoder
        self.shape = (n_rows, width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | NDArray[np.integer]) -> NDArray[np.float64]:
        idx = np.arange(*rows.indices(len(self))) if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(self))):
            raise IndexError(f"row indices must be 1-D and within [0, {len(self)})")
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
        for frame in self._frames():
            digest.update(np.ascontiguousarray(self._encoder.transform(frame)).tobytes())


def resolve_target(frame: Frame, target: str | None) -> str | None:
    """The target column's name: as given, the source's default, or (arrays without names) a column index."""
    if target is None:
        return default_target(frame)
    if target not in frame.values and frame.meta.get("unnamed"):
        try:
            return frame.columns[int(target)]
        except (ValueError, IndexError):
            raise DataError(f"the target of {frame.source} is a column index 0..{len(frame.columns) - 1} "
                            f"(or -1), got {target!r}") from None
    return target


def _replayable(spec: str, chunk_rows: int) -> Any:
    """A function giving the chunks again and again: re-read from disk, or kept when already in memory."""
    if spec.startswith(BUILTIN_PREFIX) or spec.lower().endswith(".npz"):
        frames = list(iter_frames(spec, None))
        return lambda: iter(frames)
    return lambda: iter_frames(spec, chunk_rows)


def _too_many_categories(source: str, name: str) -> str:
    return (f"{source}: column {name!r} has more than {MAX_CATEGORIES} distinct text values: an identifier or "
            "free text cannot be one-hot encoded; remove the column")


class _Scan:
    """Pass 1 of read_training_table: column kinds, category counts, first missing value, the target."""

    def __init__(self, frame: Frame, target: str | None, impute: str | None):
        if target is None:
            raise DataError(f"--target is required for {frame.source}; its columns are: {', '.join(frame.columns)}")
        self.encoder = TableEncoder(target, impute)
        self.encoder.fit_columns_check(frame)
        self.source = frame.source
        self.columns = {name: {"numeric": True, "counts": {}, "missing": None, "present": False}
                        for name in frame.columns if name != target}
        self.targets: list[Frame] = []
        self.n_rows = 0

    def add(self, frame: Frame) -> None:
        for name, state in self.columns.items():
            values = frame.values[name]
            if state["numeric"]:
                numbers, missing = _parse_numbers(values)
                state["numeric"] = numbers is not None
            else:
                missing = _missing_mask(values)
            state["present"] = state["present"] or not missing.all()
            if state["missing"] is None and missing.any():
                state["missing"] = frame.where(int(np.argmax(missing)))
            if state["counts"] is not None:
                texts, counts = np.unique(_text(values[~missing]), return_counts=True)
                if len(texts) > MAX_CATEGORIES:
                    state["counts"] = None  # a continuous column (or an identifier): stop counting
                    continue
                for text, count in zip(texts.tolist(), counts.tolist(), strict=True):
                    state["counts"][text] = state["counts"].get(text, 0) + count
                if len(state["counts"]) > MAX_CATEGORIES:
                    state["counts"] = None
        target = self.encoder.target
        column = frame.values[target].copy()  # a copy: a view would keep the whole chunk's table alive
        self.targets.append(Frame(frame.source, [target], {target: column}, frame.row_start,
                                  frame.kind, {**frame.meta, "unnamed": False}, frame.lines))
        self.n_rows += frame.n_rows

    def finish(self) -> tuple[TableEncoder, Frame, int]:
        encoder, impute = self.encoder, self.encoder.impute
        for name, state in self.columns.items():
            if not state["present"]:
                raise DataError(f"{self.source}: column {name!r} has no values")
        for name, state in self.columns.items():
            if state["missing"] is not None and impute is None:
                raise DataError(f"{self.source}: missing value in column {name!r} at {state['missing']} "
                                "(use --impute mean|median to fill missing values)")
        for name, state in self.columns.items():
            if state["numeric"]:
                encoder.columns.append({"name": name, "kind": "numeric", "fill": None})
                continue
            if state["counts"] is None:
                raise DataError(_too_many_categories(self.source, name))
            categories = sorted(state["counts"])
            fill = max(categories, key=state["counts"].__getitem__) if impute is not None else None
            encoder.columns.append({"name": name, "kind": "categorical", "categories": categories, "fill": fill})
        first, target = self.targets[0], encoder.target
        lines = None if first.lines is None else np.concatenate([f.lines for f in self.targets])
        values = {target: np.concatenate([f.values[target] for f in self.targets])}
        return encoder, Frame(first.source, [target], values, 0, first.kind, first.meta, lines), self.n_rows
