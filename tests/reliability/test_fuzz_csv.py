"""Fuzz the CSV reader and table encoder: random and mutated files give a table or a DataError.

Any other exception (IndexError, UnicodeError, a NumPy error...) fails, as does a DataError
whose message spans several lines.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

data_io = pytest.importorskip("loomnet.io.tables")

FUZZ = settings(max_examples=int(os.environ.get("LOOMNET_FUZZ_EXAMPLES", 200)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

cells = st.one_of(
    st.sampled_from(["", "1", "-2.5", "1e308", "1e999", "-inf", "inf", "nan", "NA", "?", "none", "0x1F", "1_000",
                     "３", "٣", "1,5", '"a,b"', '""', "a\nb", " 7 ", "cat", "dog", "\x00", "\ufeff1", "é", "TRUE"]),
    st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
)


@st.composite
def csv_texts(draw):
    n_cols = draw(st.integers(1, 5))
    header = draw(st.lists(st.one_of(st.sampled_from(["x", "y", "target", "a", " b ", "", "x"]), st.text(max_size=4)),
                           min_size=n_cols, max_size=n_cols))
    rows = draw(st.lists(st.lists(cells, min_size=draw(st.integers(n_cols - 1, n_cols)),
                                  max_size=n_cols + draw(st.integers(0, 1))), max_size=12))
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return sep.join(",".join(row) for row in [header, *rows]) + draw(st.sampled_from(["", sep]))


def read_and_encode(path, target) -> None:
    """The training-time path through data_io: read, fit the encoder, encode features and targets."""
    try:
        frame = data_io.read_frame(str(path))
        encoder = data_io.TableEncoder(target or data_io.default_target(frame) or frame.columns[-1])
        encoder.fit(frame)
        y = encoder.fit_target(frame, None)
        X = encoder.transform(frame)
        assert X.shape[0] == len(y) == frame.n_rows
        assert np.isfinite(X).all()
        again = data_io.TableEncoder.from_dict(encoder.to_dict())
        np.testing.assert_array_equal(again.transform(frame), X)
    except data_io.DataError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))


@FUZZ
@given(text=csv_texts(), target=st.sampled_from([None, "x", "y", "target", "missing"]))
@example(text="x,y\n1,2\n", target="y")
@example(text="x,y\n1,\n", target="y")
@example(text='x,y\n"1\n', target="y")
def test_random_csv_text_is_read_or_refused_with_a_data_error(tmp_path_factory, text, target):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_text(text, encoding="utf-8", newline="")
    read_and_encode(path, target)


@FUZZ
@given(base=csv_texts(), edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=0, max_size=4)),
                                        max_size=6))
def test_mutated_csv_bytes_are_read_or_refused_with_a_data_error(tmp_path_factory, base, edits):
    raw = bytearray(base.encode("utf-8"))
    for position, patch in edits:
        at = position % (len(raw) + 1)
        raw[at:at + len(patch) // 2] = patch
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_bytes(bytes(raw))
    read_and_encode(path, None)


def test_a_csv_with_a_huge_field_is_refused_not_crashed(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("x,y\n" + "1" * 200_000 + ",1\n")
    read_and_encode(path, "y")


def test_huge_integral_class_labels_stay_distinct(tmp_path):
    """1e30 and 2e30 are whole numbers but not int64s: casting them would merge the two classes."""
    path = tmp_path / "labels.csv"
    path.write_text("x,y\n1,1e30\n2,2e30\n3,1e30\n4,-1e300\n")
    frame = data_io.read_frame(str(path))
    y = data_io.TableEncoder("y").fit(frame).fit_target(frame, "classify")
    assert len(np.unique(y)) == 3, y
