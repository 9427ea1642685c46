"""Reading tables and encoding them: typing, one-hot, imputation, positions in messages, chunks."""

from __future__ import annotations

import numpy as np
import pytest

from loomnet.io.tables import DataError, TableEncoder, iter_frames, read_frame


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
    assert encoder.feature_names == ["size", "colour=blue", "colour=red", "note=(missing)", "note=a, b",
                                     "note=two\nlines"]
    X = encoder.transform(frame)
    assert X.tolist() == [[1.5, 0, 1, 0, 1, 0], [2, 1, 0, 0, 0, 1], [3.5, 0, 1, 1, 0, 0]]  # missing: its own category
    assert encoder.fit_target(frame, None).tolist() == ["yes", "no", "yes"] and encoder.task == "classify"


def test_messages_name_the_real_file_line_despite_blank_and_multiline_rows(csv_path):
    frame = read_frame(str(csv_path))
    with pytest.raises(DataError, match=r"column 'note' \(first at .*t.csv, row 3 \(line 6\)\)"):
        TableEncoder("y", impute="none").fit(frame)


def test_imputation_uses_training_statistics_and_survives_a_round_trip():
    from loomnet.io.tables import Frame

    train = Frame("train", ["a", "y"], {"a": np.array(["1", "2", "", "10"], dtype=object),
                                        "y": np.array([0, 1, 0, 1])})
    encoder = TableEncoder("y", impute="median").fit(train)
    again = TableEncoder.from_dict(encoder.to_dict())
    new = Frame("new", ["a"], {"a": np.array(["", "4"], dtype=object)})
    assert again.transform(new)[:, 0].tolist() == [2.0, 4.0]


def test_task_is_guessed_from_the_target():
    from loomnet.io.tables import Frame

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


@pytest.mark.parametrize("impute", ["mean", "median"])
def test_streamed_training_table_equals_fitting_the_whole_file(tmp_path, impute):
    from loomnet.io.tables import read_training_table

    rng = np.random.default_rng(1)
    lines = ["size,code,colour,y"]
    for i in range(40):
        size = "" if i % 9 == 4 else f"{rng.normal():.3f}"
        code = str(i % 3) if i < 30 else "x"  # looks numeric in the first chunks, is text later
        colour = "" if i == 33 else ["red", "blue", "green"][i % 3]
        lines.append(f"{size},{code},{colour},{'ab'[i % 2]}")
    path = tmp_path / "s.csv"
    path.write_text("\n".join(lines) + "\n")

    whole = read_frame(str(path))
    expected_encoder = TableEncoder("y", impute).fit(whole)
    expected_X = expected_encoder.transform(whole)
    encoder, X, y, _ = read_training_table(str(path), "y", impute, None, chunk_rows=6)
    assert encoder.to_dict() == {**expected_encoder.to_dict(), "task": "classify"}
    assert np.array_equal(X, expected_X)
    assert y.tolist() == ["ab"[i % 2] for i in range(40)]

    # The lazily encoded table (what an MPI rank reads its shard from) gives the same rows and digest.
    import hashlib

    from loomnet.io.tables import open_training_table

    lazy_encoder, table, lazy_y = open_training_table(str(path), "y", impute, None, chunk_rows=6)
    assert lazy_encoder.to_dict() == encoder.to_dict() and lazy_y.tolist() == y.tolist()
    assert table.shape == X.shape and len(table) == 40
    assert np.array_equal(table[0:40], X) and np.array_equal(table[7:19], X[7:19])
    picked = np.random.default_rng(0).permutation(40)[:17]
    assert np.array_equal(table[picked], X[picked])
    eager, streamed = hashlib.sha256(np.ascontiguousarray(X).tobytes()), hashlib.sha256()
    table.update_digest(streamed)
    assert streamed.hexdigest() == eager.hexdigest()


def test_streamed_training_table_reports_the_first_missing_value_and_drops_identifier_columns(tmp_path):
    from loomnet.io.tables import read_training_table

    path = tmp_path / "m.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{'' if i == 11 else 'k'},{i % 2}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"column 'b' \(first at .*m.csv, row 12 \(line 13\)\)"):
        read_training_table(str(path), "y", "none", chunk_rows=5)
    ids = tmp_path / "ids.csv"
    ids.write_text("id,v,y\n" + "".join(f"u{i},{i},{i % 2}\n" for i in range(1001)))
    encoder, X, _, _ = read_training_table(str(ids), "y", chunk_rows=300)
    assert encoder.columns[0]["kind"] == "dropped" and "identifier" in encoder.columns[0]["reason"]
    assert encoder.feature_names == ["v"] and X.shape == (1001, 1)


