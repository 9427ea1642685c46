"""Reading tables and encoding them: typing, one-hot, imputation, positions in messages, chunks."""

from __future__ import annotations

import numpy as np
import pytest

from loomnet.data_io import DataError, TableEncoder, iter_frames, read_frame


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('\ufeffsize, colour ,note,y\n1.5,red,"a, b",yes\n\n2,blue,"two\nlines",no\n3.5,red,,yes\n')
    return path


def test_csv_columns_are_typed_and_text_is_one_hot(csv_path):
    frame = read_frame(str(csv_path))
    assert frame.columns == ["size", "colour", "note", "y"]  # BOM and spaces removed from names
    encoder = TableEncoder("y", impute="mean").fit(frame)
    assert [c["kind"] for c in encoder.columns] == ["numeric", "categorical", "categorical"]
    assert encoder.feature_names == ["size", "colour=blue", "colour=red", "note=a, b", "note=two\nlines"]
    X = encoder.transform(frame)
    assert X.tolist() == [[1.5, 0, 1, 1, 0], [2, 1, 0, 0, 1], [3.5, 0, 1, 1, 0]]  # missing note: most frequent
    assert encoder.fit_target(frame, None).tolist() == ["yes", "no", "yes"] and encoder.task == "classify"


def test_messages_name_the_real_file_line_despite_blank_and_multiline_rows(csv_path):
    frame = read_frame(str(csv_path))
    with pytest.raises(DataError, match=r"column 'note' at row 3 \(line 6\)"):
        TableEncoder("y").fit(frame).transform(frame)


def test_imputation_uses_training_statistics_and_survives_a_round_trip():
    from loomnet.data_io import Frame

    train = Frame("train", ["a", "y"], {"a": np.array(["1", "2", "", "10"], dtype=object),
                                        "y": np.array([0, 1, 0, 1])})
    encoder = TableEncoder("y", impute="median").fit(train)
    again = TableEncoder.from_dict(encoder.to_dict())
    new = Frame("new", ["a"], {"a": np.array(["", "4"], dtype=object)})
    assert again.transform(new)[:, 0].tolist() == [2.0, 4.0]


def test_task_is_guessed_from_the_target():
    from loomnet.data_io import Frame

    def task(y):
        frame = Frame("f", ["x", "t"], {"x": np.zeros(len(y)), "t": np.asarray(y)})
        encoder = TableEncoder("t").fit(frame)
        encoder.fit_target(frame, None)
        return encoder.task

    assert task(["a", "b"]) == "classify"
    assert task([0, 1, 2, 1]) == "classify"
    assert task(np.arange(50)) == "regress"
    assert task([0.5, 1.25]) == "regress"


def test_chunks_concatenate_to_the_whole_file(tmp_path):
    rows = "\n".join(f"{i},{'ab'[i % 2]},{i % 3}" for i in range(23))
    path = tmp_path / "c.csv"
    path.write_text("n,letter,y\n" + rows + "\n")
    whole = read_frame(str(path))
    chunks = list(iter_frames(str(path), chunk_rows=5))
    assert [c.n_rows for c in chunks] == [5, 5, 5, 5, 3]
    assert [c.row_start for c in chunks] == [0, 5, 10, 15, 20]
    encoder = TableEncoder("y").fit(whole)
    assert np.array_equal(np.vstack([encoder.transform(c) for c in chunks]), encoder.transform(whole))
    assert chunks[2].where(1) == "row 12 (line 13)"


def test_npy_streams_in_chunks_and_arrays_align_by_position(tmp_path):
    data = np.arange(30, dtype=float).reshape(10, 3)
    np.save(tmp_path / "a.npy", data)
    chunks = list(iter_frames(str(tmp_path / "a.npy"), chunk_rows=4))
    assert [c.n_rows for c in chunks] == [4, 4, 2] and chunks[1].where(0) == "row 5"
    encoder = TableEncoder("x2").fit(read_frame(str(tmp_path / "a.npy")))
    encoder.columns = [{"name": n, "kind": "numeric", "fill": None} for n in ("p", "q")]
    encoder.target = "r"
    assert encoder.transform(chunks[0]).tolist() == data[:4, :2].tolist()


def test_builtin_generators_take_sizes_and_bad_options_are_data_errors():
    frame = read_frame("builtin:regression:n_samples=30,n_features=4,noise=0.5")
    assert frame.n_rows == 30 and len(frame.columns) == 5 and frame.meta["task"] == "regression"
    with pytest.raises(DataError, match="key=value"):
        read_frame("builtin:regression:n_samples")
    with pytest.raises(DataError, match="must be a number"):
        read_frame("builtin:regression:n_samples=many")
    with pytest.raises(DataError):
        read_frame("builtin:regression:colour=3")
