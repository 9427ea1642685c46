"""Encoding a table for a network: what was inferred for each column, fitted on the training rows only.

- **Numbers** pass through. Every numeric column gets a fill (the training median, or mean), so
  new data with gaps in any column still predicts; a column with gaps in training also gets a
  missing-indicator column (1 where the value was missing).
- **Categories** (text) become one 0/1 column per category. A column's missing values are a
  category of their own when training had some. A category never seen in training maps to the
  "unknown" slot (all zeros, or the ``(other)`` column), never an error; ``unknown_rows`` counts them.
- **High cardinality** does not explode: beyond ``MAX_ONE_HOT`` categories only the most frequent
  keep a column, the rest share ``(other)``. A text column whose values are nearly all distinct
  (an identifier, free text) is dropped, and the encoder says so.

``to_dict`` goes into the model file, so prediction encodes new data exactly the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .frames import DataError, Frame, first_bad_number, missing_mask, parse_numbers, text_values

IMPUTE_CHOICES = ("median", "mean", "none")  # "none": refuse missing feature values (loomnet 0.2's default)
MAX_ONE_HOT = 32          # categories beyond the most frequent 32 share one "(other)" column
MAX_COUNTED = 50_000      # distinct texts counted per column; beyond: free text, dropped
IDENTIFIER_SHARE = 0.5    # a text column with more distinct values than this share of its rows: an identifier
MISSING_CATEGORY = "(missing)"
OTHER = "(other)"


class TableEncoder:
    """Column names, kinds and encodings fitted on training data; turns Frames into feature matrices.

    Numeric columns are kept (missing values filled with the training median or mean, plus a
    missing-indicator column where the column had gaps); text columns are one-hot encoded, the
    most frequent ``MAX_ONE_HOT`` categories each with a column of their own and the rest sharing
    ``(other)``; a category never seen in training encodes as all zeros ("unknown") and is
    counted in ``unknown_rows``, never an error. ``loomnet train`` stores the fitted encoder in
    the model file, so ``predict`` encodes new data the same way.

    Parameters
    ----------
    target : str or None
        The target column, left out of the features.
    impute : {'median', 'mean', 'none'} or None
        How missing numbers are filled; 'none' (or None) refuses them with a :class:`DataError`.

    Raises
    ------
    DataError
        For an unknown ``impute``.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.io import Frame, TableEncoder
    >>> train = Frame("train", ["city", "rooms", "price"], {
    ...     "city": np.array(["Oslo", "Rome", "Oslo", ""]), "rooms": np.array(["2", "", "3", "4"]),
    ...     "price": np.array(["10", "8", "12", "9"])})
    >>> encoder = TableEncoder("price").fit(train)
    >>> encoder.feature_names
    ['city=(missing)', 'city=Oslo', 'city=Rome', 'rooms', 'rooms:missing']
    >>> new = Frame("new", ["city", "rooms"], {"city": np.array(["Paris"]), "rooms": np.array([""])})
    >>> encoder.transform(new), encoder.unknown_rows
    (array([[0., 0., 0., 3., 1.]]), {'city': 1})
    """

    def __init__(self, target: str | None, impute: str | None = "median"):
        impute = "none" if impute is None else impute
        if impute not in IMPUTE_CHOICES:
            raise DataError(f"impute= must be one of {', '.join(IMPUTE_CHOICES)}, got {impute!r}", options=("impute",))
        self.target = target
        self.impute = impute
        self.columns: list[dict[str, Any]] = []
        self.task: str | None = None
        self.unknown_rows: dict[str, int] = {}  # per column: rows of the last transform with an unseen category

    # ----------------------------------------------------------------- what was inferred
    @property
    def feature_columns(self) -> list[str]:
        """The input columns the model reads (dropped columns excluded)."""
        return [c["name"] for c in self.columns if c["kind"] != "dropped"]

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded features: ``col``, ``col:missing``, ``col=category``, ``col=(other)``."""
        return [name for group in self.feature_groups for name in group[2]]

    @property
    def feature_groups(self) -> list[tuple[str, list[int], list[str]]]:
        """(column, encoded feature positions, encoded feature names) for every input column:
        explanations permute and attribute a categorical column as one feature."""
        groups, offset = [], 0
        for col in self.columns:
            names = _encoded_names(col)
            groups.append((col["name"], list(range(offset, offset + len(names))), names))
            offset += len(names)
        return [g for g in groups if g[1]]

    def categorical_blocks(self, min_width: int = 2) -> list[tuple[int, int]]:
        """(first encoded feature, width) of each categorical column's one-hot block of at least
        ``min_width`` columns: where :class:`~loomnet.CategoricalEmbedding` can embed it."""
        kinds = {col["name"]: col["kind"] for col in self.columns}
        return [(positions[0], len(positions)) for name, positions, _ in self.feature_groups
                if kinds[name] == "categorical" and len(positions) >= min_width]

    def describe_columns(self) -> list[str]:
        """One line per column of what was inferred (``loomnet inspect`` shows them all)."""
        lines = []
        for col in self.columns:
            kind = col["kind"]
            if kind == "numeric":
                fill = "refused when missing" if col.get("fill") is None else f"missing -> {col['fill']:.6g}"
                extra = ", plus a missing-indicator column" if col.get("indicator") else ""
                lines.append(f"{col['name']}: numeric ({fill}{extra})")
            elif kind == "categorical":
                cats = col["categories"]
                shown = ", ".join(map(str, cats[:5])) + (", ..." if len(cats) > 5 else "")
                other = f", rarer ones as {OTHER}" if col.get("other") else ""
                lines.append(f"{col['name']}: categorical, {len(cats)} one-hot columns ({shown}){other}; "
                             "unseen categories -> unknown")
            else:
                lines.append(f"{col['name']}: dropped ({col.get('reason', 'not usable')})")
        return lines

    # ----------------------------------------------------------------- fitting
    def fit(self, frame: Frame) -> TableEncoder:
        """Fit on a whole training Frame (see :mod:`loomnet.io.tables` for files read in chunks)."""
        self.fit_columns_check(frame)
        self.columns = []
        for name in frame.columns:
            if name == self.target:
                continue
            values = frame.values[name]
            numbers, missing = parse_numbers(values)
            if missing.all():
                raise DataError(f"{frame.source}: column {name!r} has no values")
            where = f"{frame.source}, {frame.where(int(np.argmax(missing)))}" if missing.any() else None
            if numbers is not None:
                self.columns.append(self.numeric_column(name, numbers[~missing], int(missing.sum()), where))
            else:
                cats, counts = np.unique(text_values(values[~missing]), return_counts=True)
                self.columns.append(self.categorical_column(name, dict(zip(cats.tolist(), counts.tolist(),
                                                                           strict=True)),
                                                            int(missing.sum()), len(values), where))
        return self

    def fit_columns_check(self, frame: Frame) -> None:
        """Training data must have the target column and at least one other."""
        if self.target is not None and self.target not in frame.values:
            raise DataError(f"{frame.source} has no column {self.target!r}; columns are: {', '.join(frame.columns)}")
        if not [c for c in frame.columns if c != self.target]:
            raise DataError(f"{frame.source} has no feature columns besides the target {self.target!r}")

    def numeric_column(self, name: str, present: NDArray[np.float64] | None, n_missing: int,
                       first_missing: str | None = None) -> dict[str, Any]:
        """A numeric column's encoding; ``present`` its present training values (None: fill set later)."""
        if n_missing:
            self._refuse_missing(name, n_missing, first_missing)
        fill = None if present is None else self.fill_value(present)
        return {"name": name, "kind": "numeric", "fill": fill, "indicator": bool(n_missing)}

    def _refuse_missing(self, name: str, n_missing: int, first_missing: str | None) -> None:
        if self.impute == "none":
            where = f" (first at {first_missing})" if first_missing else ""
            raise DataError(f"missing value in column {name!r}{where}: impute=none refuses {n_missing} of them; "
                            "impute=median fills them", options=("impute",))

    def fill_value(self, present: NDArray[np.float64]) -> float:
        return float(np.mean(present) if self.impute == "mean" else np.median(present))

    def categorical_column(self, name: str, counts: dict[str, int] | None, n_missing: int, n_rows: int,
                           first_missing: str | None = None) -> dict[str, Any]:
        """A text column's encoding from its category counts (None: too many distinct values to count)."""
        if n_missing:
            self._refuse_missing(name, n_missing, first_missing)
        present = n_rows - n_missing
        if counts is None or (len(counts) > MAX_ONE_HOT and len(counts) > IDENTIFIER_SHARE * present):
            distinct = f"more than {MAX_COUNTED:,}" if counts is None else f"{len(counts):,}"
            return {"name": name, "kind": "dropped",
                    "reason": f"an identifier or free text: {distinct} distinct values in {present:,} rows"}
        counts = dict(counts)
        if n_missing:
            counts[MISSING_CATEGORY] = counts.get(MISSING_CATEGORY, 0) + n_missing
        ranked = sorted(counts, key=lambda c: (-counts[c], c))
        kept = sorted(ranked[:MAX_ONE_HOT])
        return {"name": name, "kind": "categorical", "categories": kept, "other": len(ranked) > MAX_ONE_HOT,
                "fill": None}

    # ----------------------------------------------------------------- encoding
    def align(self, frame: Frame) -> Frame:
        """Give an array without column names (.npy, .npz) the training columns, by position."""
        names = [c["name"] for c in self.columns]
        if not frame.meta.get("unnamed") or frame.columns[: len(names)] == names:
            return frame
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
        """Refuse data that lacks a column the model reads, naming it (extra columns are ignored)."""
        lacking = [c for c in self.feature_columns if c not in frame.values]
        if lacking:
            raise DataError(f"{frame.source} lacks column(s) {_names(lacking)} the model was trained on")

    def transform(self, frame: Frame, *, keep_missing: bool = False) -> NDArray[np.float64]:
        """The feature matrix for a Frame. ``keep_missing`` leaves NaN where a number is missing and
        its fill is not known yet (training read in chunks)."""
        frame = self.align(frame)
        self.check_columns(frame)
        blocks = []
        self.unknown_rows = {}
        for col in self.columns:
            if col["kind"] == "dropped":
                continue
            values = frame.values[col["name"]]
            if col["kind"] == "numeric":
                blocks.extend(self._numeric(frame, col, values, keep_missing))
            else:
                blocks.append(self._one_hot(col, values))
        return np.column_stack(blocks) if blocks else np.empty((frame.n_rows, 0))

    def _numeric(self, frame: Frame, col: dict[str, Any], values: NDArray, keep_missing: bool) -> list[NDArray]:
        numbers, missing = parse_numbers(values)
        if numbers is None:
            i = first_bad_number(values, missing_mask(values))
            raise DataError(f"{frame.source}: column {col['name']!r} is numeric but {frame.where(i)} holds "
                            f"{values[i]!r}")
        if missing.any():
            if col.get("fill") is not None:
                numbers[missing] = col["fill"]
            elif not keep_missing:
                i = int(np.argmax(missing))
                raise DataError(f"{frame.source}: missing value in column {col['name']!r} at {frame.where(i)}, "
                                "and the model has no fill for it (it was trained with impute='none')",
                                options=("impute",))
        finite = np.isfinite(numbers) | missing
        if not finite.all():
            i = int(np.argmax(~finite))
            raise DataError(f"{frame.source}: column {col['name']!r} has the non-finite value {numbers[i]} "
                            f"at {frame.where(i)}")
        return [numbers, missing.astype(np.float64)] if col.get("indicator") else [numbers]

    def _one_hot(self, col: dict[str, Any], values: NDArray) -> NDArray:
        text = text_values(values).astype(object)
        missing = missing_mask(values)
        categories = col["categories"]
        if missing.any():
            # its own category when training had gaps; 0.2 files filled the most frequent category
            fill = col.get("fill") if MISSING_CATEGORY not in categories else None
            text[missing] = fill or MISSING_CATEGORY
        index = {c: i for i, c in enumerate(categories)}
        codes = np.fromiter((index.get(v, -1) for v in text), dtype=np.int64, count=len(text))
        unknown = codes < 0
        width = len(categories) + bool(col.get("other"))
        out = np.zeros((len(text), width))
        out[np.flatnonzero(~unknown), codes[~unknown]] = 1.0
        if col.get("other"):
            out[unknown, -1] = 1.0
        unseen = int((unknown & ~missing).sum())
        if unseen:
            self.unknown_rows[col["name"]] = unseen
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
        numbers, missing = parse_numbers(values)
        if missing.any():
            raise DataError(f"{frame.source}: missing target value in column {self.target!r} at "
                            f"{frame.where(int(np.argmax(missing)))} (targets are never imputed)")
        task = task or self.task
        if numbers is None:
            if task == "regress":
                i = first_bad_number(values, missing)
                raise DataError(f"{frame.source}: the target column {self.target!r} is not numeric ({frame.where(i)} "
                                f"holds {values[i]!r}); regression needs numbers (task='classify' treats them as "
                                "labels)", options=("task",))
            return text_values(values)
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
        impute = d.get("impute")
        enc = cls(target, impute if impute in IMPUTE_CHOICES else "none")  # 0.2 stored None for "refuse"
        enc.columns, enc.task = list(d["columns"]), task
        return enc


def _encoded_names(col: dict[str, Any]) -> list[str]:
    if col["kind"] == "numeric":
        return [col["name"], f"{col['name']}:missing"] if col.get("indicator") else [col["name"]]
    if col["kind"] == "categorical":
        names = [f"{col['name']}={v}" for v in col["categories"]]
        return names + [f"{col['name']}={OTHER}"] if col.get("other") else names
    return []


def _valid_column(col: Any) -> bool:
    """A stored column: a name and a kind with well-typed settings (files of loomnet 0.2 included)."""
    if not isinstance(col, dict) or not isinstance(col.get("name"), str):
        return False
    fill = col.get("fill")
    flags_ok = all(isinstance(col.get(k, False), bool) for k in ("indicator", "other"))
    if col.get("kind") == "numeric":
        return flags_ok and (fill is None or (isinstance(fill, int | float) and not isinstance(fill, bool)))
    if col.get("kind") == "dropped":
        return isinstance(col.get("reason", ""), str)
    categories = col.get("categories")
    return (col.get("kind") == "categorical" and isinstance(categories, list) and len(categories) > 0
            and all(isinstance(c, str) for c in categories) and (fill is None or isinstance(fill, str)) and flags_ok)


def _names(columns: list[str], limit: int = 6) -> str:
    """A column list for a message: the first few, then how many more."""
    shown = repr(columns[:limit])
    return shown if len(columns) <= limit else f"{shown[:-1]}, ... ({len(columns) - limit} more)]"
