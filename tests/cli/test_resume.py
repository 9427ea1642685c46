"""Checkpoints: a run stopped by Ctrl-C or killed mid-epoch resumes to the uninterrupted result, bit for bit."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from loomnet.io.checkpoint import read_checkpoint
from loomnet.io.modelfile import load_model
from tests.cli_helpers import assert_user_error, run_cli

DATA = "builtin:classification:n_samples=600,n_features=10"
# Dropout and a validation split exercise every random stream; early stopping its saved state.
RUN = [DATA, "--epochs", "5", "--batch-size", "16", "--hidden", "16,8", "--dropout", "0.2", "--early-stopping", "50",
       "--seed", "7", "--no-plot", "--quiet"]


def _signal_at(epoch: int, step: int, signum: int) -> str:
    """Python run inside the CLI process: send ``signum`` to itself after the given step."""
    return f"""
    import os
    from loomnet.cli.commands import train
    class Interrupting(train.ProgressBar):
        def on_batch_end(self, trainer, epoch, step, batch_size, loss):
            super().on_batch_end(trainer, epoch, step, batch_size, loss)
            if (epoch, step) == ({epoch}, {step}):
                os.kill(os.getpid(), {int(signum)})
    train.ProgressBar = Interrupting
    """


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's model, for the given extra options (computed once each)."""
    path = tmp_path_factory.mktemp("resume")
    models: dict[tuple[str, ...], object] = {}

    def model_for(extra: tuple[str, ...] = ()):
        if extra not in models:
            name = f"full{len(models)}.loom"
            result = run_cli("train", *RUN, *extra, "-o", name, "--checkpoint-dir", f"ck{len(models)}", cwd=path)
            assert result.returncode == 0, result.stderr
            models[extra] = load_model(path / name)
        return models[extra]

    return model_for


@pytest.fixture
def uninterrupted(reference):
    return reference()


def _same_run(a, b) -> None:
    assert np.array_equal(a.params, b.params)
    losses = [(r["loss"], r.get("val_loss")) for r in a.history.records]
    assert losses == [(r["loss"], r.get("val_loss")) for r in b.history.records]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("threads, signum", [([], signal.SIGINT), (["--workers", "2", "--mode", "sync"], signal.SIGINT),
                                             ([], signal.SIGTERM)], ids=["serial", "2-workers", "sigterm"])
def test_ctrl_c_mid_epoch_saves_a_checkpoint_and_resume_is_bit_identical(tmp_path, reference, threads, signum):
    stopped = run_cli("train", *RUN, *threads, "-o", "m.loom", "--checkpoint-dir", "ck", cwd=tmp_path,
                      prelude=_signal_at(2, 10, signum))
    assert stopped.returncode == 130
    assert stopped.stderr.strip().splitlines() == [
        "error: interrupted at epoch 3, step 11; checkpoint saved in ck, continue with --resume"]
    assert not (tmp_path / "m.loom").exists()
    header, _ = read_checkpoint(tmp_path / "ck" / "checkpoint.loom")
    assert (header["trainer"]["epoch"], header["trainer"]["step"]) == (2, 11)
    if not threads and signum == signal.SIGINT:
        described = run_cli("inspect", "ck/checkpoint.loom", cwd=tmp_path)
        assert "loomnet checkpoint, format version 1, resumes at epoch 3, step 11" in described.stdout

    resumed = run_cli("train", *RUN, *threads, "-o", "m.loom", "--checkpoint-dir", "ck", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _same_run(load_model(tmp_path / "m.loom"), reference(tuple(threads)))


@pytest.mark.timeout(180)
def test_sigkill_mid_epoch_resumes_from_the_last_epoch_checkpoint_bit_identical(tmp_path, uninterrupted):
    killed = run_cli("train", *RUN, "-o", "m.loom", "--checkpoint-dir", "ck", "--checkpoint-every", "2",
                     cwd=tmp_path, prelude=_signal_at(3, 17, signal.SIGKILL))
    assert killed.returncode == -signal.SIGKILL
    header, _ = read_checkpoint(tmp_path / "ck" / "checkpoint.loom")
    assert (header["trainer"]["epoch"], header["trainer"]["step"]) == (2, 0)
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["checkpoint.loom"]  # no temporary left over

    resumed = run_cli("train", *RUN, "-o", "m.loom", "--checkpoint-dir", "ck", "--checkpoint-every", "2",
                      "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _same_run(load_model(tmp_path / "m.loom"), uninterrupted)


def test_resuming_a_finished_run_reproduces_its_model(tmp_path, uninterrupted):
    first = run_cli("train", *RUN, "-o", "a.loom", "--checkpoint-dir", "ck", cwd=tmp_path)
    assert first.returncode == 0
    again = run_cli("train", *RUN, "-o", "b.loom", "--checkpoint-dir", "ck", "--resume", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["epochs"] == 5
    _same_run(load_model(tmp_path / "b.loom"), uninterrupted)


def test_resume_with_different_options_is_refused(tmp_path):
    first = run_cli("train", *RUN, "--epochs", "1", "--checkpoint-dir", "ck", cwd=tmp_path)
    assert first.returncode == 0
    changed = run_cli("train", *RUN, "--lr", "0.5", "--checkpoint-dir", "ck", "--resume", cwd=tmp_path)
    assert_user_error(changed, "cannot resume", "lr was None, now 0.5")


def test_the_interruption_message_says_what_can_be_resumed(tmp_path):
    from loomnet.cli.commands.training_hooks import Checkpointer, resume_hint

    checkpointer = Checkpointer(tmp_path / "checkpoint.loom", 1, {}, save=None)
    assert "--checkpoint-dir" in resume_hint(None, None)
    assert resume_hint(checkpointer, "ck") == "; no checkpoint was written yet"
    checkpointer.saved_at = (3, 0)
    assert "last checkpoint (at the start of epoch 4)" in resume_hint(checkpointer, "ck")
    checkpointer.saved_on_stop = True
    assert resume_hint(checkpointer, "ck") == "; checkpoint saved in ck, continue with --resume"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["hogwild", "locked"])
def test_asynchronous_modes_checkpoint_mid_epoch_on_ctrl_c_and_resume(tmp_path, mode):
    """Per-batch callbacks run on asynchronous workers too: the progress bar sees every step, Ctrl-C
    saves a mid-epoch checkpoint with each worker's place in its shard, and the run resumes from it."""
    threads = ["--workers", "2", "--mode", mode]
    stopped = run_cli("train", *RUN, *threads, "-o", "m.loom", "--checkpoint-dir", "ck", cwd=tmp_path,
                      prelude=_signal_at(2, 10, signal.SIGINT))
    assert stopped.returncode == 130, stopped.stderr
    assert "checkpoint saved in ck, continue with --resume" in stopped.stderr
    header, _ = read_checkpoint(tmp_path / "ck" / "checkpoint.loom")
    state = header["trainer"]
    assert state["epoch"] == 2 and state["step"] >= 11
    assert sum(state["lane_steps"]) == state["step"] and len(state["lane_steps"]) == 2
    resumed = run_cli("train", *RUN, *threads, "-o", "m.loom", "--checkpoint-dir", "ck", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    model = load_model(tmp_path / "m.loom")
    assert [r["epoch"] for r in model.history.records] == [1, 2, 3, 4, 5]
    assert np.isfinite(model.params).all()
