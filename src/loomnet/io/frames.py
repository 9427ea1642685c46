"""Reading tabular data: CSV, ``.npy``/``.npz``, Parquet and the built-in sets, as :class:`Frame` blocks.

A :class:`Frame` is named columns of one block of rows; readers return the whole file or an
iterator of chunks (so ``predict`` works on files larger than memory).
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


class DataError(ValueError):
    """The data cannot be used as given; the message names the file, row and column.

    A ``ValueError``; the CLI prints it as its one-line error and exits 2.

    Parameters
    ----------
    message : str
        What is wrong and where.
    options : tuple of str
        The parameters the message names as ``name=`` (``impute=``, ``target=``): the command
        line spells them as its flags (``--impute``) with :meth:`for_command_line`.

    Examples
    --------
    >>> from loomnet.io import DataError
    >>> error = DataError("missing value in column 'age' at row 3; use impute='median'", options=("impute",))
    >>> error.for_command_line()
    "missing value in column 'age' at row 3; use --impute 'median'"
    """

    def __init__(self, message: str, *, options: tuple[str, ...] = ()):
        super().__init__(message)
        self.options = options

    def for_command_line(self) -> str:
        text = str(self)
        for name in self.options:
            text = text.replace(f"{name}=", f"--{name.replace('_', '-')} ")
        return text


@dataclass
class Frame:
    """Named 1-D columns for a block of rows, as read from a table (values are text or numbers).

    Parameters
    ----------
    source : str
        Where the rows come from (a path or ``builtin:NAME``), for messages.
    columns : list of str
        Column names, in order.
    values : dict of str to ndarray
        One 1-D array per column, all of the same length.
    row_start : int
        The block's first row in the source.
    kind : str
        'csv', 'parquet', 'npy', 'npz', 'builtin' or 'array'.
    meta : dict
        What the reader knows besides the columns (a built-in dataset's task).
    lines : ndarray or None
        CSV: the file line each row ends on, so messages name it.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.io import Frame
    >>> values = {"rooms": np.array(["2", "3"]), "price": np.array(["10", "12"])}
    >>> frame = Frame("prices.csv", ["rooms", "price"], values, lines=np.array([2, 3]))
    >>> frame.n_rows, frame.where(1)
    (2, 'row 2 (line 3)')
    """

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
    """Read a whole data source into one :class:`Frame`.

    Parameters
    ----------
    spec : str
        ``builtin:NAME`` (see ``loomnet datasets``), or the path of a CSV, ``.npy``, ``.npz``
        or ``.parquet`` file (Parquet needs pyarrow, the ``parquet`` extra).

    Returns
    -------
    Frame

    Raises
    ------
    DataError
        For a missing or unreadable file, or one that is not a table.

    Examples
    --------
    >>> from loomnet.io import read_frame
    >>> iris = read_frame("builtin:iris")
    >>> iris.n_rows, iris.columns[-1]
    (150, 'target')
    """
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
    values = {name: table[:, i] for i, name in enumerate(header)}  # text as read: text_values() strips it when used
    return Frame(str(path), header, values, start, "csv", lines=np.array(lines, dtype=np.int64))


# ----------------------------------------------------------------- typing values
def missing_mask(values: NDArray) -> NDArray[np.bool_]:
    if values.dtype.kind in "biu":
        return np.zeros(len(values), dtype=bool)
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.isin(np.char.lower(text_values(values)), list(MISSING))


def text_values(values: NDArray) -> NDArray[np.str_]:
    """Cell values as stripped strings."""
    return np.char.strip(values.astype(str))


def parse_numbers(values: NDArray) -> tuple[NDArray[np.float64] | None, NDArray[np.bool_]]:
    """(numbers with NaN where missing, the missing mask); numbers is None when a present value is not a number."""
    if values.dtype.kind in "biuf":
        numbers = values.astype(np.float64)
        return numbers, np.isnan(numbers)
    try:
        numbers = values.astype(np.float64)  # the fast path: every cell is a number ('nan' counts as missing)
        return numbers, np.isnan(numbers)
    except (ValueError, TypeError):
        missing = missing_mask(values)
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


def first_bad_number(values: NDArray, missing: NDArray[np.bool_]) -> int:
    for i in np.flatnonzero(~missing):
        try:
            float(values[i])
        except ValueError:
            return int(i)
    return -1


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
