"""Fuzz the model-file and checkpoint readers with mutated files: a model or a ModelFileError.

Byte mutations mostly stop at the checksum, so the JSON header (which the checksum does not
cover) is also mutated structurally — any value anywhere replaced by random JSON — and the
safetensors index is rewritten with a matching checksum, to reach the deeper checks. An atheris
(libFuzzer) variant runs under the ``slow`` marker when atheris is installed.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("loomnet.io.modelfile")

from loomnet.io.checkpoint import read_checkpoint  # noqa: E402
from loomnet.io.modelfile import ModelFileError, load_model, save_model  # noqa: E402

from .conftest import blobs  # noqa: E402
from .loomcraft import join, split, st_join, st_split  # noqa: E402

FUZZ = settings(max_examples=int(os.environ.get("LOOMNET_FUZZ_EXAMPLES", 300)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8)
    | st.sampled_from(["Dense", "relu", "float64", "standard", "adam", "model", "checkpoint", "F32", "I64"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def loads_or_refuses(path, reader=load_model) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = reader(path)
        except ModelFileError as exc:
            assert str(exc) and "\n" not in str(exc), repr(str(exc))
            return
    if reader is load_model:  # a model that loads must be usable (or refuse data with a ValueError)
        try:
            out = result.predict(blobs(n=5)[0])
            assert len(out) == 5
        except (ValueError, TypeError, RuntimeError) as exc:
            assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory, trained_model) -> dict[str, bytes]:
    from loomnet import Dense, Sequential
    from loomnet.io.checkpoint import save_checkpoint
    from loomnet.training import Trainer

    folder = tmp_path_factory.mktemp("valid")
    save_model(trained_model, folder / "model.loom")
    X, y = blobs(n=60)
    regressor = Sequential([Dense(4, "tanh"), Dense(1)], loss="mse", target_preprocess="standard")
    regressor.fit(X, y.astype(float), epochs=1)
    save_model(regressor, folder / "regressor.loom")
    trainer = Trainer(Sequential([Dense(4), Dense(3)]), X, y, epochs=2)
    trainer.run()
    save_checkpoint(trainer, folder / "checkpoint.loom")
    return ValidFiles({name: (folder / f"{name}.loom").read_bytes() for name in ("model", "regressor", "checkpoint")})


class ValidFiles(dict):
    """The seed files; a short repr keeps hypothesis' failure reports readable."""

    def __repr__(self) -> str:
        return f"<valid .loom files: {', '.join(self)}>"


def paths_of(doc, prefix=()):
    """Every path (tuple of keys/indices) into a JSON document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths_of(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths_of(v, (*prefix, i))


def replace_at(doc, path, value):
    if not path:
        return value
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@FUZZ
@given(data=st.data(), which=st.sampled_from(["model", "regressor"]))
def test_a_header_with_any_value_replaced_loads_or_is_refused(tmp_path_factory, valid_files, data, which):
    header, weights = split(valid_files[which])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in paths_of(header) if p[:1] != ("tensors",)]
        path = data.draw(st.sampled_from(paths))
        header = replace_at(header, path, data.draw(json_values))
    target = tmp_path_factory.mktemp("fuzz") / "m.loom"
    target.write_bytes(join(header if isinstance(header, dict) else json.dumps(header).encode(), weights))
    loads_or_refuses(target)


@FUZZ
@given(data=st.data())
def test_a_checkpoint_with_any_header_value_replaced_is_read_or_refused(tmp_path_factory, valid_files, data):
    header, weights = split(valid_files["checkpoint"])
    path = data.draw(st.sampled_from([p for p in paths_of(header) if p[:1] != ("tensors",)]))
    header = replace_at(header, path, data.draw(json_values))
    target = tmp_path_factory.mktemp("fuzz") / "c.loom"
    target.write_bytes(join(header if isinstance(header, dict) else json.dumps(header).encode(), weights))
    loads_or_refuses(target, read_checkpoint)


@FUZZ
@given(data=st.data())
def test_safetensors_index_mutations_with_a_matching_checksum_are_refused_or_load(tmp_path_factory, valid_files,
                                                                                  data):
    header, weights = split(valid_files["model"])
    index, raw = st_split(weights)
    paths = list(paths_of(index))[1:]
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(paths))
        try:
            index = replace_at(index, path, data.draw(json_values))
        except (KeyError, IndexError, TypeError):
            pass
    target = tmp_path_factory.mktemp("fuzz") / "m.loom"
    target.write_bytes(join(header, st_join(index, raw)))
    loads_or_refuses(target)


@FUZZ
@given(which=st.sampled_from(["model", "checkpoint"]),
       edits=st.lists(st.tuples(st.integers(0, 2**31), st.binary(max_size=8),
                                st.sampled_from(["set", "insert", "cut"])), min_size=1, max_size=5))
def test_byte_mutations_are_refused_or_load(tmp_path_factory, valid_files, which, edits):
    blob = bytearray(valid_files[which])
    for position, patch, how in edits:
        at = position % (len(blob) + 1)
        if how == "set":
            blob[at:at + len(patch)] = patch
        elif how == "insert":
            blob[at:at] = patch
        else:
            del blob[at:at + len(patch) + 1]
    target = tmp_path_factory.mktemp("fuzz") / "x.loom"
    target.write_bytes(bytes(blob))
    loads_or_refuses(target, load_model if which == "model" else read_checkpoint)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_atheris_fuzzes_the_model_reader(tmp_path, valid_files):
    """libFuzzer-guided fuzzing of load_model for LOOMNET_ATHERIS_RUNS inputs (default 20000)."""
    pytest.importorskip("atheris")
    script = tmp_path / "fuzz_reader.py"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, blob in valid_files.items():
        (corpus / name).write_bytes(blob)
    script.write_text(ATHERIS_HARNESS)
    runs = os.environ.get("LOOMNET_ATHERIS_RUNS", "20000")
    import subprocess

    done = subprocess.run([sys.executable, str(script), f"-runs={runs}", "-max_len=65536", str(corpus)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, done.stderr[-4000:]


ATHERIS_HARNESS = '''
import os, sys, tempfile, warnings
import atheris

with atheris.instrument_imports():
    from loomnet.io.modelfile import ModelFileError, load_model

fd, PATH = tempfile.mkstemp(suffix=".loom")
os.close(fd)
warnings.simplefilter("ignore")


def one_input(data: bytes) -> None:
    with open(PATH, "wb") as fh:
        fh.write(data)
    try:
        load_model(PATH)
    except ModelFileError as exc:
        assert "\\n" not in str(exc)


atheris.Setup(sys.argv, one_input)
atheris.Fuzz()
'''


def test_the_fuzz_corpus_files_are_valid(tmp_path, valid_files, trained_model):
    (tmp_path / "m.loom").write_bytes(valid_files["model"])
    model = load_model(tmp_path / "m.loom")
    np.testing.assert_array_equal(model.params, trained_model.params)


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    """A model and a checkpoint written by `loomnet train` on a CSV (they carry the column encoding)."""
    import contextlib
    import io

    from loomnet.cli import main

    folder = tmp_path_factory.mktemp("cli-model")
    (folder / "data.csv").write_text("x1,x2,colour,label\n" + "".join(
        f"{i % 7},{i % 3},{['red', 'blue'][i % 2]},{'ab'[(i // 2) % 2]}\n" for i in range(40)))
    with contextlib.chdir(folder), contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "data.csv", "--target", "label", "--hidden", "4", "--epochs", "2", "--no-plot",
                     "--out", "model.loom", "--checkpoint-dir", "ck"]) == 0
    return folder, ValidFiles({"model": (folder / "model.loom").read_bytes(),
                               "checkpoint": (folder / "ck" / "checkpoint.loom").read_bytes()})


@FUZZ
@given(data=st.data(), which=st.sampled_from(["model", "checkpoint"]))
def test_the_cli_on_a_fuzzed_header_exits_0_or_2(cli_files, data, which):
    """inspect, predict and evaluate read more of the header (column encoding, settings, history)."""
    import contextlib
    import io

    from loomnet.cli import main

    folder, files = cli_files
    header, weights = split(files[which])
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from([p for p in paths_of(header) if p[:1] != ("tensors",)]))
        header = replace_at(header, path, data.draw(json_values))
    target = folder / "fuzzed.loom"
    target.write_bytes(join(header if isinstance(header, dict) else json.dumps(header).encode(), weights))
    commands = [["inspect", str(target)]]
    if which == "model":
        commands += [["predict", str(target), str(folder / "data.csv")],
                     ["evaluate", str(target), str(folder / "data.csv"), "--no-plot"]]
    for argv in commands:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(argv)
        assert code in (0, 2) and "Traceback" not in err.getvalue(), f"{argv[0]}: {err.getvalue()}"
