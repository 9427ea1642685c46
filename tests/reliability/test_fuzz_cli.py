"""Fuzz the command line: random argument lists give exit code 0 or 2 (one line ``error: ...``),
never 1 (an internal error) and never a traceback.

``main(argv)`` runs in-process; every value pool keeps a run short (tiny data, few epochs) and
every file lands in a temporary directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

cli = pytest.importorskip("loomnet.cli")

from .loomcraft import Payload  # noqa: E402

FUZZ = settings(max_examples=int(os.environ.get("LOOMNET_FUZZ_EXAMPLES", 120)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

WEIRD = ["", "-", "--", "nan", "inf", "-1", "0", "1e400", "ünï", "a,b", "../..", "/dev/null", "/", "x" * 300]
DATA = ["builtin:xor", "builtin:iris", "builtin:nope", "builtin:", "builtin:classification:n_samples=40",
        "builtin:classification:n_samples=-5", "builtin:regression:n_samples=30:n_features=2", "good.csv", "bad.csv",
        "missing.csv", "model.loom", "garbage.loom", "empty.csv", "data.npy", "."]
TRAIN_OPTIONS = {
    "--target": ["y", "x1", "nope", "0", "-1", "label"],
    "--task": ["classify", "regress", "cluster"],
    "--impute": ["mean", "median", "mode"],
    "--hidden": ["4", "3,3", "none", "0", "-2", "a", "4,,4"],
    "--activation": ["relu", "tanh", "softmax", "nope", "gelu"],
    "--dropout": ["0", "0.5", "1", "-0.1", "x"],
    "--l2": ["0", "1e-3", "-1", "nan", "inf"],
    "--loss": ["mse", "mae", "cross_entropy", "binary_cross_entropy", "hinge"],
    "--optimizer": ["sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs"],
    "--lr": ["0.01", "0", "-1", "1e9", "nan", "abc"],
    "--epochs": ["1", "2", "0", "-3", "abc", "2.5"],
    "--batch-size": ["1", "8", "full", "0", "-1", "half"],
    "--workers": ["1", "2", "auto", "0", "many"],
    "--mode": ["sync", "hogwild", "async"],
    "--val-fraction": ["0", "0.2", "0.99", "1", "-0.5"],
    "--early-stopping": ["1", "0", "x"],
    "--loss-threshold": ["0.1", "nan", "-inf", "x"],
    "--dtype": ["float32", "float64", "float16"],
    "--seed": ["0", "-1", "99999999999999999999", "x"],
    "--out": ["out.loom", "sub/out.loom", "/nonexistent/out.loom", ".", "good.csv/out.loom"],
    "--plot": ["p.png", "/nonexistent/p.png"],
    "--checkpoint-dir": ["ck", "good.csv", "/nonexistent/ck"],
    "--checkpoint-every": ["1", "0", "x"],
}
FLAGS = ["--resume", "--no-plot", "--json", "--quiet", "-q", "--proba", "--help", "--version", "--bogus"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory with a trained model and good, bad, empty and binary data files."""
    path = tmp_path_factory.mktemp("cli-fuzz")
    (path / "good.csv").write_text("x1,x2,label\n" + "".join(f"{i % 7},{i % 3},{'ab'[i % 2]}\n" for i in range(40)))
    (path / "bad.csv").write_text('x1,x2,label\n1,,a\n2,"unterminated\n3,4\n')
    (path / "empty.csv").write_text("")
    (path / "garbage.loom").write_bytes(os.urandom(512))
    (path / "data.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with contextlib.chdir(path):
        assert run(["train", "good.csv", "--target", "label", "--hidden", "4", "--epochs", "2", "--out",
                    "model.loom", "--no-plot", "--quiet"])[0] == 0
    return path


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # --help and --version exit through argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def check(argv: list[str], code: int, err: str) -> None:
    assert "Traceback" not in err, f"{argv}: {err}"
    assert code in (0, 2), f"{argv} exited {code}: {err}"
    if code == 2 and err.strip():
        last = err.strip().splitlines()[-1]
        assert last.startswith("error:") or "usage:" in err, f"{argv}: {err}"


@st.composite
def train_argv(draw):
    argv = ["train"]
    if draw(st.booleans()):
        argv.append(draw(st.sampled_from(DATA)))
    for option in draw(st.lists(st.sampled_from(sorted(TRAIN_OPTIONS)), max_size=6, unique=True)):
        argv += [option, draw(st.one_of(st.sampled_from(TRAIN_OPTIONS[option]), st.sampled_from(WEIRD)))]
    argv += draw(st.lists(st.sampled_from(FLAGS[:4]), max_size=2))
    # keep every run short: tiny data and at most 2 epochs unless the draw picked something invalid
    if not any(a.startswith("builtin:") or a.endswith(".csv") for a in argv[1:2]):
        argv.insert(1, "builtin:xor")
    if "--epochs" not in argv:
        argv += ["--epochs", "2"]
    if "--out" not in argv:
        argv += ["--out", "fuzz.loom"]
    return argv


@st.composite
def other_argv(draw):
    command = draw(st.sampled_from(["evaluate", "predict", "inspect", "datasets", "bogus", "--version", "-x"]))
    positional = draw(st.lists(st.sampled_from(DATA + WEIRD), max_size=3))
    options = draw(st.lists(st.sampled_from(FLAGS + ["-o", "out.csv", "--target", "label", "--chunk-rows", "0",
                                                     "--chunk-rows", "3", "--confusion", "c.png"]), max_size=4))
    return [command, *positional, *options]


@FUZZ
@given(argv=train_argv())
@example(argv=["train", "good.csv", "--target", "label", "--loss", "binary_cross_entropy", "--epochs", "1",
               "--out", "a.loom", "--no-plot"])
@example(argv=["train", "builtin:xor", "--resume", "--checkpoint-dir", "ck", "--epochs", "1", "--out", "a.loom"])
def test_random_train_command_lines_exit_0_or_2_with_one_line_errors(workdir, argv):
    with contextlib.chdir(workdir):
        code, err = run(argv)
    check(argv, code, err)


@FUZZ
@given(argv=other_argv())
@example(argv=["predict", "model.loom", "good.csv", "--chunk-rows", "3", "-o", "out.csv", "--proba"])
@example(argv=["evaluate", "model.loom", "builtin:iris"])
@example(argv=["inspect", "garbage.loom"])
def test_random_evaluate_predict_inspect_command_lines_exit_0_or_2(workdir, argv):
    with contextlib.chdir(workdir):
        code, err = run(argv)
    check(argv, code, err)


@FUZZ
@given(argv=st.lists(st.text(max_size=12), max_size=6))
def test_arbitrary_strings_as_arguments_exit_0_or_2(workdir, argv):
    if argv and argv[0] == "train":
        argv += ["--epochs", "1", "--out", "fuzz.loom"]
    with contextlib.chdir(workdir):
        code, err = run(argv)
    check(argv, code, err)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_data_files_carrying_a_pickle_payload_are_refused_and_never_executed(tmp_path, suffix):
    marker = tmp_path / "payload-ran"
    path = tmp_path / f"data{suffix}"
    payload = np.array([[Payload(str(marker)), 1.0]], dtype=object)
    with open(path, "wb") as fh:
        if suffix == ".npy":
            np.save(fh, payload, allow_pickle=True)
        else:
            np.savez(fh, X=payload, y=np.array([0], dtype=object))
    with contextlib.chdir(tmp_path):
        for argv in (["train", str(path), "--epochs", "1", "--out", "m.loom", "--no-plot"],
                     ["datasets"], ["predict", "m.loom", str(path)]):
            code, err = run(argv)
            check(argv, code, err)
    assert not marker.exists(), "reading a data file executed a pickle payload"
